"""The CI gate: judge a run's report against device budgets. Exit 0 pass, 1 a budget broken, 2 cannot judge.

It fails closed: a missing report, an unknown device, a device without budgets or a budget whose
figure was never measured is exit 2, never a silent pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PASS, FAIL, CANNOT_JUDGE = 0, 1, 2


@dataclass
class GateRow:
    device: str
    budget: str
    value: float | None
    limit: float | None
    passed: bool | None


@dataclass
class GateResult:
    rows: list[GateRow]
    problems: list[str]

    @property
    def exit_code(self) -> int:
        if any(r.passed is False for r in self.rows):
            return FAIL
        if self.problems or not self.rows or any(r.passed is None for r in self.rows):
            return CANNOT_JUDGE
        return PASS


def read_report(run: Path) -> dict:
    path = run / "report.json" if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"no report at {path}: run `compress run RECIPE` first (or give the run folder)")
    return json.loads(path.read_text())


def judge_report(report: dict, device: str | None = None) -> GateResult:
    devices = report.get("devices") or {}
    problems = []
    if device is not None and device not in devices:
        return GateResult([], [f"device '{device}' is not in this report; it has: {', '.join(devices) or 'none (no validate stage ran)'}"])
    if not devices:
        problems.append("the report holds no device results (did the recipe end with a validate stage, and did it finish?)")
    rows = []
    for name, result in devices.items():
        if device is not None and name != device:
            continue
        budgets = result.get("budgets") or {}
        if not budgets:
            problems.append(f"device '{name}' has no budgets to judge")
        for budget, row in budgets.items():
            rows.append(GateRow(name, budget, row.get("value"), row.get("limit"), row.get("passed")))
            if row.get("value") is None:
                problems.append(f"{name}: {budget} has no measured value")
    return GateResult(rows, problems)
