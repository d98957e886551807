"""A file of a finished run that changes afterwards is never trusted: the re-run rebuilds from the
stage that wrote it, and gate, bundle and report refuse the run (exit 2) until then."""

import shutil

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe
from tests.conftest import finished_run_recipe


@pytest.fixture
def tampered(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "02-export/model.onnx").write_bytes(b"garbage")
    return run


@pytest.mark.parametrize(
    "command",
    [
        ["gate", "{run}"],
        ["gate", "{run}/report.json"],
        ["bundle", "{run}", "--device", "host", "-o", "{run}/b.zip"],
        ["report", "{run}", "--runs", "10"],
    ],
)
def test_commands_refuse_a_changed_file_with_exit_2(tampered, command):
    result = CliRunner().invoke(main, [part.format(run=tampered) for part in command])
    assert result.exit_code == 2, result.output
    assert "02-export/model.onnx" in result.output and "changed" in result.output and "Traceback" not in result.output


def test_the_rerun_rebuilds_from_the_stage_whose_file_changed(tampered, finished_run, caplog):
    with caplog.at_level("WARNING", logger="compress"):
        report = run_recipe(parse_recipe(finished_run_recipe()), tampered, quiet=True)
    assert [s["status"] for s in report["stages"]] == ["resumed", "ran", "ran", "ran"]
    assert "re-running from 02-export: 02-export/model.onnx changed since the stage wrote it" in caplog.text
    assert (tampered / "02-export/model.onnx").read_bytes() == (finished_run / "02-export/model.onnx").read_bytes()
    assert CliRunner().invoke(main, ["gate", str(tampered), "--device", "host"]).exit_code in (0, 1)


def test_a_vanished_model_checkpoint_reruns_its_stage(finished_run, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "01-train/model.pt").unlink()
    with caplog.at_level("WARNING", logger="compress"):
        report = run_recipe(parse_recipe(finished_run_recipe()), run, quiet=True)
    assert report["stages"][0]["status"] == "ran" and "01-train/model.pt is missing" in caplog.text
