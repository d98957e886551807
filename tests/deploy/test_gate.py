import json

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
