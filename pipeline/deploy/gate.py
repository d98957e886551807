"""The CI gate: judge a run's report, or on-device results, against device budgets.

Exit 0 pass, 1 a budget broken, 2 cannot judge. It fails closed: a missing report, an unknown device,
a device without budgets or a budget whose figure was never measured is exit 2, never a silent pass.
`results.json` from the on-device script is judged with the same rules (the script's budget rows
are re-judged here from their values and limits, so an edited verdict does not pass).
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
        return RunFolder(source).report()
    if not source.is_file():
        raise UserError(f"no report at {source}: run `compress run RECIPE` first (or give the run folder)")
    return read_json(source, "a run report or on-device results")


def is_device_results(document: dict) -> bool:
    return document.get("format") == on_device.RESULTS_FORMAT


def results_as_report(results: dict) -> dict:
    """On-device results in a run report's shape: one device, its budgets re-judged from the figures."""
    budgets = {name: row.get("limit") for name, row in (results.get("budgets") or {}).items()}
    unknown = sorted(set(budgets) - set(on_device.RULES))
    if unknown:
        raise ValueError(f"results.json has budgets this version does not know: {', '.join(unknown)}")
    figures = {on_device.RULES[name][0]: row.get("value") for name, row in results["budgets"].items()}
    return {"devices": {results.get("device", "device"): {"budgets": on_device.judge(budgets, figures)}}}


def judge_report(report: dict, device: str | None = None) -> GateResult:
    if is_device_results(report):
        report = results_as_report(report)
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
