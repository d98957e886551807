import dataclasses
import json

import pytest

from pipeline.core.errors import UserError
from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe
from pipeline.stages import STAGES


def short(recipe: dict) -> dict:
    """train -> export only: enough to exercise resume, seconds to run."""
    recipe["stages"] = [recipe["stages"][0], recipe["stages"][2]]
    recipe["devices"] = ["host"]
    return recipe


def statuses(report):
    return [s["status"] for s in report["stages"]]


def test_rerun_resumes_and_edits_rerun_from_the_changed_stage(tmp_path, tiny_recipe):
    recipe = short(tiny_recipe)
    first = run_recipe(parse_recipe(recipe), tmp_path)
    assert statuses(first) == ["ran", "ran"]
    model_time = (tmp_path / "01-train/model.pt").stat().st_mtime_ns

    again = run_recipe(parse_recipe(recipe), tmp_path)
    assert statuses(again) == ["resumed", "resumed"]
    assert again["stages"][0]["metrics"] == first["stages"][0]["metrics"]
    assert (tmp_path / "01-train/model.pt").stat().st_mtime_ns == model_time

    recipe["stages"][1]["export"]["parity_samples"] = 64
    edited = run_recipe(parse_recipe(recipe), tmp_path)
    assert statuses(edited) == ["resumed", "ran"]
    assert json.loads((tmp_path / "02-export/metrics.json").read_text())["parity"]["parity_samples"] == 64

    fresh = run_recipe(parse_recipe(recipe), tmp_path, fresh=True)
    assert statuses(fresh) == ["ran", "ran"]
    assert fresh["stages"][0]["metrics"] == first["stages"][0]["metrics"], "same seed, same result"


def test_interrupted_stage_leaves_finished_ones_and_resumes(tmp_path, tiny_recipe, monkeypatch):
    recipe = short(tiny_recipe)
    export_stage = STAGES._items["export"]

    def killed(cfg, state, ctx):
        (ctx.stage_dir / "model.onnx").write_text("half a file")
        raise KeyboardInterrupt

    monkeypatch.setitem(STAGES._items, "export", dataclasses.replace(export_stage, run=killed))
    with pytest.raises(KeyboardInterrupt):
        run_recipe(parse_recipe(recipe), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert statuses(report) == ["ran", "failed"]
    assert not (tmp_path / "02-export/state.json").exists()

    monkeypatch.setitem(STAGES._items, "export", export_stage)
    resumed = run_recipe(parse_recipe(recipe), tmp_path)
    assert statuses(resumed) == ["resumed", "ran"]
    assert resumed["artifacts"]["onnx_fp32"] == "02-export/model.onnx"


def test_removed_stages_leave_no_stale_folders(tmp_path, tiny_recipe):
    recipe = short(tiny_recipe)
    run_recipe(parse_recipe(recipe), tmp_path)
    recipe["stages"] = recipe["stages"][:1]
    run_recipe(parse_recipe(recipe), tmp_path)
    assert not (tmp_path / "02-export").exists()


def test_unwritable_output_folder_is_a_user_error(tmp_path, tiny_recipe):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write to the output folder"):
        run_recipe(parse_recipe(short(tiny_recipe)), blocker / "run")


def test_cuda_asked_without_cuda_falls_back_to_cpu(monkeypatch, caplog):
    import torch

    from pipeline.runner import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("WARNING", logger="compress"):
        assert pick_device("cuda").type == "cpu"
    assert "no CUDA device is available" in caplog.text
    assert pick_device("auto").type == "cpu"


def test_more_processes_than_gpus_is_refused_before_anything_runs(monkeypatch):
    """NCCL would fail on two ranks sharing a GPU only at the first collective, mid-stage."""
    import torch

    from pipeline.runner import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(UserError, match=r"3 processes .* 2 GPU\(s\).*--nproc 2"):
        pick_device("auto")
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert pick_device("cuda") == torch.device("cuda", 1)


def test_heads_and_teachers_survive_resume(tmp_path, tiny_recipe):
    """aux_heads -> self_distill -> prune (distillation recovery) -> distill from before:prune -> export with exits."""
    tiny_recipe["devices"] = ["host"]
    tiny_recipe["stages"] = [
        {"aux_heads": {"kind": "bottleneck", "train": {"epochs": 1, "lr": 0.01}}},
        {"self_distill": {"mode": "both", "train": {"epochs": 1}}},
        {"prune": {"target": {"keep_macs": 0.6}, "steps": 1, "recovery": "distill", "finetune": {"epochs": 1}}},
        {"distill": {"teacher": "before:prune", "train": {"epochs": 1}}},
        {"export": {"exits": ["head1"], "exit_max_accuracy_drop": 10}},
    ]
    first = run_recipe(parse_recipe(tiny_recipe), tmp_path)
    assert statuses(first) == ["ran"] * 5
    assert (tmp_path / "03-prune/heads.pt").is_file()
    assert set(first["stages"][2]["metrics"]["heads_accuracy"]) == {"head1", "head2", "final"}, "the report lists each head's accuracy"
    assert "heads_accuracy" not in first["stages"][4]["metrics"], "exported model has no heads"
    distill = json.loads((tmp_path / "04-distill/metrics.json").read_text())
    prune = json.loads((tmp_path / "03-prune/metrics.json").read_text())
    assert distill["teacher"]["params"] == prune["before"]["params"], "the teacher is the model that entered prune"

    tiny_recipe["stages"][4]["export"]["exit_max_accuracy_drop"] = 5
    again = run_recipe(parse_recipe(tiny_recipe), tmp_path)
    assert statuses(again) == ["resumed"] * 4 + ["ran"]
    exported = json.loads((tmp_path / "05-export/metrics.json").read_text())
    assert exported["heads_stripped"] == ["head1", "head2"]
    assert exported["params"] == prune["params"], "the resumed backbone is the pruned one"


def test_training_on_validation_is_a_different_run_and_off_keeps_earlier_fingerprints(tiny_recipe):
    from pipeline.runner import stage_fingerprints

    off = stage_fingerprints(parse_recipe(tiny_recipe), [])
    tiny_recipe["data"]["train_on_validation"] = False
    assert stage_fingerprints(parse_recipe(tiny_recipe), []) == off
    tiny_recipe["data"]["train_on_validation"] = True
    assert stage_fingerprints(parse_recipe(tiny_recipe), [])[0] != off[0], "trained on other images: nothing may resume"
    assert off[0] == "647ccf5d86b691c4641faf855084fc5781cdf5ec415bf1a3012c608e7b7f64e0", "the one it had before the option existed"


def test_a_stage_is_held_to_what_it_declares():
    """The recipe's order checks trust each stage's declarations; the runner checks them after the stage."""
    import torch

    from pipeline.core.checkpoints import weights_digest
    from pipeline.core.state import ModelState
    from pipeline.stages.base import STAGES

    model = torch.nn.Linear(2, 2)
    before = weights_digest(model)
    export, train = STAGES.get("export"), STAGES.get("train")
    assert export.broken_promises(before, ModelState(model=model, artifacts={"onnx_fp32": "x.onnx"})) == []
    with torch.no_grad():
        model.weight.add_(1)
    assert export.broken_promises(before, ModelState(model=model)) == [
        "it provides onnx_fp32 but left no such file", "it declares that it leaves the weights alone, but they changed",
    ]
    assert train.broken_promises(before, ModelState(model=model)) == [], "train declares that it changes the weights"
    assert weights_digest(torch.nn.Linear(2, 2)) != weights_digest(torch.nn.Linear(2, 3))
