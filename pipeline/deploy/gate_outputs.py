"""What `compress gate` writes for a CI beside its exit code: JUnit XML and a markdown job summary."""

from __future__ import annotations

from pathlib import Path

from pipeline.deploy.budgets import VERDICT
from pipeline.deploy.gate import GateResult


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
    verdict = VERDICT[result.passed]
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
