"""Run mutmut over the safety modules (pyproject.toml, [tool.mutmut]) and fail unless every mutant is killed.

    python tests/mutation_score.py          # what `make mutation` runs; about 8 minutes on 2 cores

Prints the score per module and each surviving mutant's diff. A survivor is either a missing test
(write it) or an equivalent mutant (reshape the code so the mutation changes behaviour, or say why
in docs/testing.md and mark the line `# pragma: no mutate`).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = [sys.executable, "-m", "mutmut"]
DETECTED = {"killed", "timeout"}  # a mutant that makes the tests hang is caught too (forkserver isolation: no fork deadlocks)


def results() -> dict[str, str]:
    listed = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows = (line.strip().rsplit(": ", 1) for line in listed.splitlines() if ": " in line)
    return {name: status for name, status in rows}


def main() -> int:
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    subprocess.run([*MUTMUT, "run"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    by_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    survivors = []
    for name, status in results().items():
        module = name.split(".x", 1)[0]
        by_module[module][status] += 1
        if status not in DETECTED:
            survivors.append((name, status))
    print(f"{'module':<45} {'mutants':>8} {'caught':>7} {'score':>7}")
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        caught = sum(counts[s] for s in DETECTED)
        print(f"{module:<45} {total:>8} {caught:>7} {caught / total:>7.1%}")
    for name, status in survivors:
        diff = subprocess.run([*MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True).stdout
        print(f"\n{name}: {status}\n" + "\n".join(line for line in diff.splitlines() if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
