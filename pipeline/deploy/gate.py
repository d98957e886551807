"""The CI gate: judge a run's report, or on-device results, against device budgets.

Exit 0 pass, 1 a budget broken, 2 cannot judge. It fails closed: a missing report, an unknown device,
a device without budgets, a budget whose figure was never measured (or is not a number), a budget
this version does not know, or a file that is not the JSON object it should be is exit 2, never a
silent pass. Every row, of a run report or of on-device `results.json`, is re-judged here from its
value and limit with the on-device script's rules; a stored verdict is never trusted, so an edited
one does not pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devices.on_device import verdicts
from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder, read_json

PASS, FAIL, CANNOT_JUDGE = verdicts.PASS, verdicts.FAIL, verdicts.CANNOT_JUDGE  # the on-device script's exit codes


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
    not_judged: list[str] = field(default_factory=list)  # budgets left out on purpose (`only`), by name, each once

    @property
    def passed(self) -> bool | None:
        """False when a budget is broken, None when something cannot be judged (or nothing was), else True."""
        if any(r.passed is False for r in self.rows):
            return False
        if self.problems or not self.rows or any(r.passed is None for r in self.rows):
            return None
        return True

    @property
    def exit_code(self) -> int:
        return verdicts.exit_code(self.passed)


def read_report(source: Path) -> dict:
    """A run's report (`source` is the run folder or its report.json), or on-device results.json."""
    if source.is_dir():
        run = RunFolder(source)
        report = run.report()
        run.verify(report)
        return report
    if not source.is_file():
        raise UserError(f"no report at {source}: run `compress run RECIPE` first (or give the run folder)")
    document = read_json(source, "a run report or on-device results")
    if not is_device_results(document):  # a run's report.json: its files must still be the ones it judged
        RunFolder(source.parent).verify(document)
    return document


def is_device_results(document: dict) -> bool:
    return document.get("format") == verdicts.RESULTS_FORMAT


def results_as_report(results: dict) -> dict:
    """On-device results in a run report's shape: one device and its budget rows (which
    `judge_report` re-judges from their values, like a report's)."""
    return {"devices": {results.get("device", "device"): {"budgets": results.get("budgets")}}}


def judge_report(report: dict, device: str | None = None, only: tuple[str, ...] | None = None) -> GateResult:
    """Every budget of every device (or of `device`); with `only`, those budgets alone, the others
    listed as not judged (`compress bench` judges a file without data on `verdicts.SPEED_BUDGETS`)."""
    if is_device_results(report):
        report = results_as_report(report)
    devices = report.get("devices") or {}
    if not isinstance(devices, dict):
        return GateResult([], [f"the report's `devices` is a JSON {type(devices).__name__}, not an object of device results"])
    problems = []
    if device is not None and device not in devices:
        return GateResult([], [f"device '{device}' is not in this report; it has: {', '.join(devices) or 'none (no validate stage ran)'}"])
    if not devices:
        problems.append("the report holds no device results (did the recipe end with a validate stage, and did it finish?)")
    rows, not_judged = [], []
    for name, result in devices.items():
        if device is not None and name != device:
            continue
        budgets = result.get("budgets") if isinstance(result, dict) else None
        if isinstance(budgets, dict) and only is not None:
            not_judged += [b for b in budgets if b not in only and b not in not_judged]
            budgets = {b: row for b, row in budgets.items() if b in only}
        if not isinstance(budgets, dict) or not budgets:
            problems.append(f"device '{name}' has no budgets to judge")
            continue
        for budget, row in budgets.items():
            judged, problem = rejudge(budget, row)
            rows.append(GateRow(name, budget, *judged))
            if problem:
                problems.append(f"{name}: {budget} {problem}")
    return GateResult(rows, problems, not_judged)


def rejudge(budget: str, row) -> tuple[tuple, str | None]:
    """(value, limit, passed) recomputed from the row's value and limit with the on-device rules,
    never read from its stored verdict; and what makes it unjudgeable, if anything."""
    if not isinstance(row, dict):
        return (None, None, None), f"is not a {{value, limit}} object (got {type(row).__name__})"
    value, limit = row.get("value"), row.get("limit")
    if budget not in verdicts.RULES:
        return (value, limit, None), f"is not a budget this version knows (known: {', '.join(verdicts.RULES)})"
    if not _number(limit):
        return (value, limit, None), f"has no numeric limit (got {limit!r})"
    if not _number(value):
        return (value, limit, None), "has no measured value" if value is None else f"has a value that is not a number ({value!r})"
    judged = verdicts.judge({budget: limit}, {verdicts.RULES[budget][0]: value})[budget]
    return (judged["value"], limit, judged["passed"]), None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x  # NaN is not a figure
