"""Run mutmut over the safety modules (pyproject.toml, [tool.mutmut]) and fail unless every mutant is killed.

    python tests/mutation_score.py                        # what `make mutation` runs
    python tests/mutation_score.py "pipeline.deploy.gate*"   # one module's mutants only, while writing its tests

Prints the score per module and each surviving mutant's diff. A survivor is either a missing test
(write it) or an equivalent mutant: reshape the code so the mutation changes behaviour, or list it in
tests/equivalent_mutants.toml with the reason (its function and its mutated line, so the entry
survives renumbering). An entry that no survivor matches any more fails the run too: the list stays true.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = [sys.executable, "-m", "mutmut"]
EQUIVALENT = ROOT / "tests" / "equivalent_mutants.toml"
DETECTED = {"killed", "timeout"}  # a mutant that makes the tests hang is caught too (forkserver isolation: no fork deadlocks)


def results() -> dict[str, str]:
    listed = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows = (line.strip().rsplit(": ", 1) for line in listed.splitlines() if ": " in line)
    return {name: status for name, status in rows}


def mutated_lines(name: str) -> list[str]:
    """The lines a mutant put in place of the original, stripped."""
    diff = subprocess.run([*MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True).stdout
    return [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]


def equivalent_entry(name: str, lines: list[str], entries: list[dict]) -> dict | None:
    function = name.rsplit("__mutmut_", 1)[0]
    return next((e for e in entries if e["function"] == function and e["mutated"].strip() in lines), None)


def main(patterns: list[str]) -> int:
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    subprocess.run([*MUTMUT, "run", *patterns], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    by_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    survivors = []
    entries = tomllib.loads(EQUIVALENT.read_text())["equivalent"]
    used = set()
    for name, status in results().items():
        if status == "not checked":  # outside the patterns given
            continue
        module = name.split(".x", 1)[0]
        if status in DETECTED:
            by_module[module]["caught"] += 1
            continue
        lines = mutated_lines(name)
        entry = equivalent_entry(name, lines, entries)
        if entry is not None and status == "survived":
            by_module[module]["equivalent"] += 1
            used.add(id(entry))
        else:
            by_module[module]["missed"] += 1
            survivors.append((name, status, lines))
    print(f"{'module':<45} {'mutants':>8} {'caught':>7} {'equiv.':>7} {'score':>7}")
    for module, counts in sorted(by_module.items()):
        judged = counts["caught"] + counts["missed"]
        print(f"{module:<45} {judged + counts['equivalent']:>8} {counts['caught']:>7} {counts['equivalent']:>7} {counts['caught'] / judged:>7.1%}")
    for name, status, lines in survivors:
        print(f"\n{name}: {status}\n" + "\n".join(f"+ {line}" for line in lines))
    stale = [e for e in entries if id(e) not in used and e["function"].split(".x", 1)[0] in by_module]
    for entry in stale:
        print(f"\nlisted as equivalent but no surviving mutant matches (a test kills it now, or the code moved): {entry['function']}: {entry['mutated']}")
    return 1 if survivors or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
