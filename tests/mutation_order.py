"""Under mutation testing, run a mutant's tests fastest first, so the first test that kills it is a quick one.

mutmut runs each mutant's tests with `-x` (stop at the first failure), in the order it lists them.
Its fork runner sorts them by the durations its stats run recorded; its forkserver runner, the one
torch needs (pyproject.toml, `process_isolation`), passes them unsorted, so a mutant that a
millisecond test kills could first sit through a ten-second export test. This restores the fork
runner's order. Tests stay grouped by file (a file's module-scoped fixtures are set up once), files
ordered by the time their selected tests take together. Outside mutation testing it does nothing.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

STATS = Path("mutmut-stats.json")  # mutmut runs every mutant's tests from inside its `mutants/` copy, beside this


def under_mutation() -> bool:
    return "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", "") and STATS.is_file()


def fastest_first(items: list, seconds: dict[str, float]) -> list:
    """Items grouped by file, files by their tests' total time, tests within a file by their own."""
    by_file: dict[str, list] = defaultdict(list)
    for item in items:
        by_file[item.nodeid.split("::", 1)[0]].append(item)
    files = sorted(by_file.values(), key=lambda group: sum(seconds.get(i.nodeid, 0.0) for i in group))
    return [item for group in files for item in sorted(group, key=lambda i: seconds.get(i.nodeid, 0.0))]


def pytest_collection_modifyitems(config, items: list) -> None:
    if under_mutation():
        items[:] = fastest_first(items, json.loads(STATS.read_text())["duration_by_test"])
