import json

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
        run.verify(run.report())


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


def test_json_files_are_written_indented_for_people_and_paths_as_text(tmp_path):
    from pathlib import Path

    from pipeline.core.run_folder import write_json_atomic

    write_json_atomic(tmp_path / "a.json", {"model": Path("/x/model.pt"), "n": [1]})
    assert (tmp_path / "a.json").read_text() == '{\n  "model": "/x/model.pt",\n  "n": [\n    1\n  ]\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"], "no temporary file is left behind"


def test_unreadable_stage_files_are_named_with_what_they_should_be(tmp_path):
    stage = RunFolder(tmp_path).stage(0, "train")
    stage.path.mkdir()
    with pytest.raises(UserError) as caught:
        stage.metrics()
    assert str(caught.value) == f"cannot read a stage's metrics {stage.path / 'metrics.json'}: No such file or directory"
    with pytest.raises(UserError) as caught:
        stage.saved_state()
    assert str(caught.value) == f"cannot read a stage's state {stage.path / 'state.json'}: No such file or directory"
    with pytest.raises(UserError) as caught:
        RunFolder(tmp_path).recipe_header()
    assert str(caught.value) == f"cannot read the run's recipe header {tmp_path / 'recipe.json'}: No such file or directory"


def test_the_recipe_header_round_trips(tmp_path):
    run = RunFolder(tmp_path)
    run.write_recipe_header({"seed": 3, "data": {"source": "embedded"}})
    assert run.recipe_header() == {"seed": 3, "data": {"source": "embedded"}}


def test_why_a_stage_must_run_again_is_said_in_words(tmp_path):
    stage = RunFolder(tmp_path).stage(0, "train")
    stage.path.mkdir()
    assert stage.why_not_finished("fp") == "it did not finish"
    stage.commit({}, {}, "fp", 1.0)
    assert stage.why_not_finished("other") == "its recipe entry or what it received changed"
    (stage.path / "state.json").write_text('{"fingerprint": "fp"}')
    assert stage.why_not_finished("fp") == "its state records no file hashes (written by an older version), so its files cannot be trusted"


def test_a_stage_committed_twice_is_still_finished(tmp_path):
    """The commit marker is not among the files it records: recording the previous marker's hash would
    make every re-committed stage look changed."""
    stage = RunFolder(tmp_path).stage(0, "train")
    stage.path.mkdir()
    (stage.path / "model.pt").write_bytes(b"w")
    stage.commit({}, {}, "fp", 1.0)
    stage.commit({}, {}, "fp", 2.0)
    assert stage.finished_with("fp")
    assert set(stage.saved_state()["files"]) == {"model.pt", "metrics.json"}


def test_stage_folders_are_the_numbered_folders_in_order(tmp_path):
    run = RunFolder(tmp_path)
    for name in ("02-export", "01-train", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "03-file").write_text("not a folder")
    assert [stage.path for stage in run.stage_folders()] == [tmp_path / "01-train", tmp_path / "02-export"]


def _finished_stage(run, index, name):
    stage = run.stage(index, name)
    stage.path.mkdir()
    (stage.path / "model.pt").write_bytes(b"weights")
    stage.commit({}, {}, "fp", 1.0)
    return stage


@pytest.mark.parametrize("status", ["ran", "resumed"])
def test_verify_checks_the_files_of_every_stage_that_ran_or_resumed(tmp_path, status):
    run = RunFolder(tmp_path)
    first, second = _finished_stage(run, 0, "train"), _finished_stage(run, 1, "prune")
    (first.path / "model.pt").write_bytes(b"edited")
    (second.path / "model.pt").write_bytes(b"edited")
    stages = [{"folder": "01-train", "status": status}, {"folder": "02-prune", "status": status}]
    with pytest.raises(IntegrityError) as caught:
        run.verify({"stages": stages})
    assert str(caught.value) == (
        f"{tmp_path}: files of this run changed after it finished, so its figures no longer describe them: "
        "01-train/model.pt changed since the stage wrote it (SHA-256 differs); "
        "02-prune/model.pt changed since the stage wrote it (SHA-256 differs). "
        "Run `compress run RECIPE` again to rebuild what changed."
    )


def test_verify_passes_over_stages_that_did_not_run_and_reads_the_report_it_is_given(tmp_path):
    run = RunFolder(tmp_path)  # no report.json on disk: verify judges the report it was handed
    (tmp_path / "01-train").mkdir()  # failed before committing: no state.json
    run.verify({"stages": [{"folder": "01-train", "status": "failed"}, "not a stage"]})


def test_verify_checks_every_artifact_past_one_the_run_did_not_make(tmp_path):
    run = RunFolder(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"graph")
    artifacts = {"onnx_int8": None, "onnx_fp32": "model.onnx"}
    report = {"artifacts": artifacts, "artifact_sha256": run.artifact_hashes(artifacts)}
    run.verify(report)
    (tmp_path / "model.onnx").write_bytes(b"edited")
    with pytest.raises(IntegrityError, match=r"model.onnx \(onnx_fp32\) changed"):
        run.verify(report)


def test_a_run_folder_that_cannot_be_written_names_the_option_to_change(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError) as caught:
        RunFolder(tmp_path / "file/run").ensure_writable()
    assert str(caught.value).endswith(": Not a directory. Choose another with --out DIR.")


def test_a_model_state_round_trips_through_its_json_record():
    import torch

    from pipeline.core.state import ModelState

    model = torch.nn.Linear(2, 2)
    state = ModelState(
        model=model, head_specs=[{"name": "head1"}], artifacts={"onnx_fp32": "02-export/model.onnx"}, reference={"accuracy": 0.9},
        compressed=True, devices={"pi": {"passed": True}}, widths=[{"width": 0.5, "checkpoint": "w.pt"}],
    )
    record = state.to_json()
    assert set(record) == {"head_specs", "artifacts", "reference", "compressed", "devices", "widths"}
    again = ModelState.from_json(json.loads(json.dumps(record)), model)
    assert again == state and again.model is model and again.heads is None
    older = ModelState.from_json({"artifacts": {}, "reference": {}, "compressed": False, "devices": {}}, model)
    assert older.widths == [] and older.head_specs == [], "fields an older run did not write take their defaults"


def test_a_stage_is_found_by_its_recipe_name_the_first_of_that_name(tmp_path):
    run = RunFolder(tmp_path)
    run.write_report({"stages": [{"name": "train", "folder": "01-train"}, {"name": "prune", "folder": "02-prune"}, {"name": "train", "folder": "03-train"}]})
    assert run.stage_of("prune").path == tmp_path / "02-prune"
    assert run.stage_of("train").path == tmp_path / "01-train"
    with pytest.raises(UserError) as refused:
        run.stage_of("export")
    assert str(refused.value) == f"{tmp_path}: the run has no export stage (its stages: train, prune, train)"
    run.write_report({"stages": []})
    with pytest.raises(UserError, match=r"the run has no export stage \(its stages: none\)$"):
        run.stage_of("export")
