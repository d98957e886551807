import json

import pytest

from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder


def test_a_stage_counts_as_finished_only_once_committed_with_the_same_fingerprint(tmp_path):
    stage = RunFolder(tmp_path).stage(0, "train")
    assert stage.name == "01-train"
    stage.path.mkdir()
    assert not stage.finished_with("abc"), "no state.json: unfinished"
    stage.commit({"accuracy": 0.5}, {"artifacts": {}}, "abc", 1.5)
    assert stage.finished_with("abc") and not stage.finished_with("abd")
    assert stage.metrics() == {"accuracy": 0.5} and stage.saved_state()["seconds"] == 1.5
    (stage.path / "state.json").write_text("{half")
    assert not stage.finished_with("abc"), "a torn marker is not a finished stage"


def test_reports_that_are_missing_or_not_an_object_are_clear_errors(tmp_path):
    run = RunFolder(tmp_path)
    with pytest.raises(UserError, match="no report at .*compress run"):
        run.report()
    run.report_file.write_text("[1, 2]")
    with pytest.raises(UserError, match="holds a JSON list, not the object a run report is"):
        run.report()
    run.report_file.write_text("{nope")
    with pytest.raises(UserError, match="is not JSON"):
        run.report()


def test_artifacts_are_paths_inside_the_run(tmp_path):
    run = RunFolder(tmp_path)
    run.write_report({"artifacts": {"onnx_fp32": "03-export/model.onnx", "onnx_int8": None}})
    assert run.artifacts() == {"onnx_fp32": tmp_path / "03-export/model.onnx"}
    assert json.loads(run.report_file.read_text())["artifacts"]["onnx_int8"] is None
