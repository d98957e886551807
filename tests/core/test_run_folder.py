
import pytest

from pipeline.core.errors import IntegrityError, UserError
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


def test_artifacts_are_paths_inside_the_run_checked_against_their_hashes(tmp_path):
    run = RunFolder(tmp_path)
    (tmp_path / "03-export").mkdir()
    onnx_file = tmp_path / "03-export/model.onnx"
    onnx_file.write_bytes(b"graph")
    artifacts = {"onnx_fp32": "03-export/model.onnx", "onnx_int8": None}
    run.write_report({"artifacts": artifacts, "artifact_sha256": run.artifact_hashes(artifacts)})
    assert run.artifacts() == {"onnx_fp32": onnx_file}
    onnx_file.write_bytes(b"graph, edited")
    with pytest.raises(IntegrityError, match=r"03-export/model.onnx \(onnx_fp32\) changed since the run wrote it"):
        run.artifacts()
    onnx_file.unlink()
    with pytest.raises(IntegrityError, match="is missing"):
        run.artifacts()
    run.write_report({"artifacts": artifacts})
    with pytest.raises(IntegrityError, match="records no hash for onnx_fp32"):
        run.verify()


def test_a_stage_whose_file_changed_is_not_finished(tmp_path):
    stage = RunFolder(tmp_path).stage(1, "export")
    stage.path.mkdir()
    (stage.path / "model.onnx").write_bytes(b"graph")
    stage.commit({}, {}, "fp", 1.0)
    assert stage.why_not_finished("fp") is None
    (stage.path / "model.onnx").write_bytes(b"garbage")
    assert stage.why_not_finished("fp") == "02-export/model.onnx changed since the stage wrote it (SHA-256 differs)"
    (stage.path / "model.onnx").unlink()
    assert stage.why_not_finished("fp") == "02-export/model.onnx is missing"


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    run = RunFolder(tmp_path)
    with run.lock():
        with pytest.raises(UserError, match="is in use by another `compress run` \\(pid"):
            with RunFolder(tmp_path).lock():
                pass
    with run.lock():  # released when the first run ends
        pass
