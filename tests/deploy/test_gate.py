import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main


def report(tmp_path, devices):
    (tmp_path / "report.json").write_text(json.dumps({"schema_version": 1, "devices": devices}))
    return str(tmp_path)


def device(**budgets):
    return {"budgets": {k: {"value": v[0], "limit": v[1], "passed": v[2]} for k, v in budgets.items()}}


def gate(*args):
    return CliRunner().invoke(main, ["gate", *args])


def test_gate_passes(tmp_path):
    result = gate(report(tmp_path, {"pi": device(max_size_kb=(10, 20, True))}))
    assert result.exit_code == 0 and "gate: PASS" in result.output
    assert "max_size_kb" in result.output and "pass" in result.output


def test_gate_fails_on_a_broken_budget(tmp_path):
    run = report(tmp_path, {"pi": device(max_size_kb=(10, 20, True), min_accuracy=(0.7, 0.8, False))})
    result = gate(run)
    assert result.exit_code == 1 and "FAIL" in result.output


def test_gate_only_judges_the_asked_device(tmp_path):
    run = report(tmp_path, {"pi": device(max_size_kb=(10, 20, True)), "phone": device(max_size_kb=(30, 20, False))})
    assert gate(run, "--device", "pi").exit_code == 0
    assert gate(run, "--device", "phone").exit_code == 1


def test_gate_fails_closed(tmp_path):
    run = report(tmp_path, {"pi": device(max_accuracy_drop=(None, 1.0, None))})
    result = gate(run)
    assert result.exit_code == 2 and "no measured value" in result.output
    assert gate(run, "--device", "unknown-board").exit_code == 2
    assert gate(str(tmp_path / "missing")).exit_code == 2
    assert gate(report(tmp_path, {})).exit_code == 2
    assert gate(report(tmp_path, {"pi": {"budgets": {}}})).exit_code == 2


def test_a_stored_verdict_is_never_trusted(tmp_path):
    """A report edited to say `passed: true` over a value beyond its limit still fails."""
    assert gate(report(tmp_path, {"pi": device(max_size_kb=(30, 20, True))})).exit_code == 1
    assert gate(report(tmp_path, {"pi": device(min_accuracy=(0.9, 0.8, False))})).exit_code == 0


def test_a_missing_figure_cannot_be_judged_even_if_marked_failed(tmp_path):
    result = gate(report(tmp_path, {"pi": device(max_size_kb=(10, 20, True), min_accuracy=(None, 0.8, False))}))
    assert result.exit_code == 2 and "min_accuracy has no measured value" in result.output


@pytest.mark.parametrize(
    "document, message",
    [
        ([1, 2], "holds a JSON list"),
        ({"devices": ["pi"]}, "`devices` is a JSON list"),
        ({"devices": {"pi": {"budgets": {"max_size_kb": 12}}}}, "max_size_kb is not a {value, limit} object"),
        ({"devices": {"pi": {"budgets": {"max_speed": {"value": 1, "limit": 2}}}}}, "max_speed is not a budget this version knows"),
        ({"devices": {"pi": {"budgets": {"max_size_kb": {"value": "small", "limit": 2}}}}}, "value that is not a number ('small')"),
        ({"devices": {"pi": {"budgets": {"max_size_kb": {"value": 1, "limit": None}}}}}, "has no numeric limit"),
    ],
)
def test_documents_of_the_wrong_shape_cannot_be_judged(tmp_path, document, message):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    result = gate(str(path))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_device_without_budgets_does_not_hide_the_next_devices_verdict(tmp_path):
    from pipeline.deploy.gate import FAIL, judge_report

    result = judge_report({"devices": {"empty": {"budgets": {}}, "pi": device(max_size_kb=(30, 20, True))}})
    assert result.exit_code == FAIL and [(r.device, r.passed) for r in result.rows] == [("pi", False)]
    assert result.problems == ["device 'empty' has no budgets to judge"]


def test_on_device_results_are_judged_under_their_device_name():
    from pipeline.deploy.gate import CANNOT_JUDGE, PASS, judge_report
    from devices.on_device.verdicts import RESULTS_FORMAT

    results = {"format": RESULTS_FORMAT, "device": "pi4", **device(max_size_kb=(10, 20, False))}
    judged = judge_report(results, device="pi4")
    assert judged.exit_code == PASS and [(r.device, r.budget, r.passed) for r in judged.rows] == [("pi4", "max_size_kb", True)]
    unnamed = judge_report({"format": RESULTS_FORMAT, **device(max_size_kb=(10, 20, True))})
    assert [r.device for r in unnamed.rows] == ["device"]
    assert judge_report(results, device="phone").exit_code == CANNOT_JUDGE


def test_what_cannot_be_read_or_found_is_named(tmp_path):
    missing = tmp_path / "results.json"
    result = gate(str(missing))
    assert result.exit_code == 2 and f"no report at {missing}: run `compress run RECIPE` first (or give the run folder)" in result.output
    missing.write_text("{half")
    result = gate(str(missing))
    assert result.exit_code == 2 and "; it should be a run report or on-device results" in result.output


def test_a_report_json_given_as_a_file_is_checked_against_its_run_files(tmp_path):
    from pipeline.core.run_folder import RunFolder

    (tmp_path / "model.onnx").write_bytes(b"graph")
    artifacts = {"onnx_fp32": "model.onnx"}
    document = {"artifacts": artifacts, "artifact_sha256": RunFolder(tmp_path).artifact_hashes(artifacts), **{"devices": {"pi": device(max_size_kb=(10, 20, True))}}}
    (tmp_path / "report.json").write_text(json.dumps(document))
    assert gate(str(tmp_path / "report.json")).exit_code == 0
    (tmp_path / "model.onnx").write_bytes(b"edited")
    result = gate(str(tmp_path / "report.json"))
    assert result.exit_code == 2 and "model.onnx (onnx_fp32) changed since the run wrote it" in result.output


def test_judge_report_names_what_is_missing_in_words():
    from pipeline.deploy.gate import judge_report

    assert judge_report({"devices": {"pi": {}, "phone": {}}}, device="nano").problems == [
        "device 'nano' is not in this report; it has: pi, phone"
    ]
    assert judge_report({}, device="nano").problems == ["device 'nano' is not in this report; it has: none (no validate stage ran)"]
    assert judge_report({}).problems == ["the report holds no device results (did the recipe end with a validate stage, and did it finish?)"]
    assert judge_report({"devices": {"pi": [1, 2]}}).problems == ["device 'pi' has no budgets to judge"]


def test_rows_of_the_wrong_kind_are_named_exactly():
    from pipeline.deploy.gate import rejudge

    assert rejudge("max_size_kb", 12) == ((None, None, None), "is not a {value, limit} object (got int)")
    assert rejudge("max_speed", {"value": 1, "limit": 2}) == (
        (1, 2, None),
        "is not a budget this version knows (known: max_size_kb, max_size_gzip_kb, max_latency_p90_ms, min_accuracy, max_accuracy_drop, max_peak_memory_mb, min_map, max_map_drop)",
    )


def test_only_the_budgets_asked_for_are_judged_and_the_rest_named_once():
    from devices.on_device.verdicts import SPEED_BUDGETS
    from pipeline.deploy.gate import judge_report

    assert SPEED_BUDGETS == ("max_size_kb", "max_size_gzip_kb", "max_latency_p90_ms", "max_peak_memory_mb")
    report = {"devices": {
        "pi": {"budgets": {"max_size_kb": {"value": 10, "limit": 20}, "min_accuracy": {"value": None, "limit": 0.8}}},
        "phone": {"budgets": {"min_accuracy": {"value": None, "limit": 0.8}, "max_accuracy_drop": {"value": None, "limit": 1}, "max_size_kb": {"value": 30, "limit": 20}}},
    }}
    result = judge_report(report, only=SPEED_BUDGETS)
    assert [(r.device, r.budget, r.passed) for r in result.rows] == [("pi", "max_size_kb", True), ("phone", "max_size_kb", False)]
    assert result.not_judged == ["min_accuracy", "max_accuracy_drop"] and result.problems == [] and result.exit_code == 1
    everything = judge_report(report)
    assert everything.not_judged == [] and len(everything.rows) == 5 and everything.exit_code == 1
    only_accuracy = {"devices": {"pi": {"budgets": {"min_accuracy": {"value": None, "limit": 0.8}}}}}
    assert judge_report(only_accuracy, only=SPEED_BUDGETS).problems == ["device 'pi' has no budgets to judge"]
