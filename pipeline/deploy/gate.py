"""The CI gate: judge a run's report, or on-device results, against device budgets.

Exit 0 pass, 1 a budget broken, 2 cannot judge. It fails closed: a missing report, an unknown device,
a device without budgets, a budget whose figure was never measured (or is not a number), a budget
this version does not know, or a file that is not the JSON object it should be is exit 2, never a
silent pass. Every row, of a run report or of on-device `results.json`, is re-judged here from its
value and limit with the on-device script's rules; a stored verdict is never trusted, so an edited
one does not pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devices.on_device import validate_on_device as on_device
from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder, read_json

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
    return document.get("format") == on_device.RESULTS_FORMAT


def results_as_report(results: dict) -> dict:
    """On-device results in a run report's shape: one device and its budget rows (which
    `judge_report` re-judges from their values, like a report's)."""
    return {"devices": {results.get("device", "device"): {"budgets": results.get("budgets")}}}


def judge_report(report: dict, device: str | None = None) -> GateResult:
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
    rows = []
    for name, result in devices.items():
        if device is not None and name != device:
            continue
        budgets = result.get("budgets") if isinstance(result, dict) else None
        if not isinstance(budgets, dict) or not budgets:
            problems.append(f"device '{name}' has no budgets to judge")
            continue
        for budget, row in budgets.items():
            judged, problem = rejudge(budget, row)
            rows.append(GateRow(name, budget, *judged))
            if problem:
                problems.append(f"{name}: {budget} {problem}")
    return GateResult(rows, problems)


def rejudge(budget: str, row) -> tuple[tuple, str | None]:
    """(value, limit, passed) recomputed from the row's value and limit with the on-device rules,
    never read from its stored verdict; and what makes it unjudgeable, if anything."""
    if not isinstance(row, dict):
        return (None, None, None), f"is not a {{value, limit}} object (got {type(row).__name__})"
    value, limit = row.get("value"), row.get("limit")
    if budget not in on_device.RULES:
        return (value, limit, None), f"is not a budget this version knows (known: {', '.join(on_device.RULES)})"
    if not _number(limit):
        return (value, limit, None), f"has no numeric limit (got {limit!r})"
    if not _number(value):
        return (value, limit, None), "has no measured value" if value is None else f"has a value that is not a number ({value!r})"
    judged = on_device.judge({budget: limit}, {on_device.RULES[budget][0]: value})[budget]
    return (judged["value"], limit, judged["passed"]), None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x  # NaN is not a figure


def junit_xml(result: GateResult) -> str:
    """One test case per device and budget (a failure when broken, an error when it cannot be judged),
    plus one error case per problem, so CI systems list every budget."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name="compress gate", tests=str(len(result.rows) + len(result.problems)))
    failures = errors = 0
    for row in result.rows:
        case = ET.SubElement(suite, "testcase", classname=f"compress.gate.{row.device}", name=row.budget)
        detail = f"{row.budget}: value {row.value}, limit {row.limit}"
        if row.passed is False:
            failures += 1
            ET.SubElement(case, "failure", message=detail, type="BudgetBroken").text = detail
        elif row.passed is None:
            errors += 1
            ET.SubElement(case, "error", message=f"{row.budget}: cannot judge (value {row.value})", type="CannotJudge")
    for problem in result.problems:
        errors += 1
        case = ET.SubElement(suite, "testcase", classname="compress.gate", name="judgeable")
        ET.SubElement(case, "error", message=problem, type="CannotJudge")
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def markdown_summary(result: GateResult, source: str) -> str:
    """A table fit for a CI job summary ($GITHUB_STEP_SUMMARY and the like)."""
    verdict = {PASS: "PASS", FAIL: "FAIL", CANNOT_JUDGE: "CANNOT JUDGE"}[result.exit_code]
    lines = [f"## compress gate: {verdict}", "", f"`{source}`", "", "| device | budget | value | limit | verdict |", "|---|---|---|---|---|"]
    for row in result.rows:
        mark = {True: "✅ pass", False: "❌ FAIL", None: "⚠️ unknown"}[row.passed]
        lines.append(f"| {row.device} | {row.budget} | {_cell(row.value)} | {_cell(row.limit)} | {mark} |")
    if result.problems:
        lines += ["", "Cannot judge:", *[f"- {p}" for p in result.problems]]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def write_outputs(result: GateResult, source: str, junit_path: str | None, summary_path: str | None) -> None:
    """The JUnit XML and markdown summary a CI asked for (`compress gate --junit/--summary`)."""
    if junit_path:
        Path(junit_path).write_text(junit_xml(result))
    if summary_path:
        with open(summary_path, "a") as f:  # appending: CI summary files collect several steps
            f.write(markdown_summary(result, source))
