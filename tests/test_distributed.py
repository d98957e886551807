"""Training in several processes (torchrun, gloo on the CPU): real processes, a tiny recipe.

Every training stage runs under DistributedDataParallel; the test checks what a user relies on:
every rank ends each stage with the same structure and weights, pruning removes the same channels
on every rank, only rank 0 writes the run folder, and a run killed under two processes resumes
under one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core import distributed
from pipeline.launcher import RankFailed, launch

EVERY_TRAINING_STAGE = {
    "name": "every-training-stage",
    "seed": 0,
    "accelerator": "cpu",
    "data": {"source": "embedded", "train_subset": 300, "test_subset": 200, "batch_size": 64},
    "model": {"name": "tiny_cnn", "kwargs": {"widths": [8, 8, 16, 16]}},
    "stages": [
        {"train": {"epochs": 1, "lr": 0.01}},
        {"aux_heads": {"train": {"epochs": 1, "lr": 0.01}}},
        {"self_distill": {"mode": "both", "train": {"epochs": 2, "lr": 0.005}}},
        {"self_distill": {"mode": "sla", "train": {"epochs": 1, "lr": 0.005}}},
        {"distill": {"teacher": "before:self_distill", "dual_head_weight": 1.0, "train": {"epochs": 1, "lr": 0.005}}},
        {"prune": {"target": {"keep_macs": 0.5}, "steps": 2, "recovery": "distill", "finetune": {"epochs": 1}}},
        {"export": {}},
        {"quantize": {"method": "qat", "calibration_samples": 64, "parity_samples": 200, "min_top1_agreement": 0.5, "qat": {"train": {"epochs": 1, "lr": 0.0005}}}},
    ],
    "devices": ["host"],
}
TRAINING_STAGES = ["train", "aux_heads", "self_distill", "self_distill", "distill", "prune", "quantize"]


def run_ranks(write_recipe, tmp_path: Path, recipe: dict, kill_stage: str | None = None) -> tuple[Path, list[dict]]:
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    out = tmp_path / "run"
    args = [str(write_recipe(recipe)), str(out), str(records), *([kill_stage] if kill_stage else [])]
    try:
        launch(2, args, module="tests.distributed_driver")
    finally:
        ranks = [json.loads(p.read_text()) for p in sorted(records.glob("rank*.json"))]
    return out, ranks


@pytest.fixture(autouse=True)
def one_thread_per_rank(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_every_training_stage_under_two_processes(write_recipe, tmp_path):
    out, (rank0, rank1) = run_ranks(write_recipe, tmp_path, EVERY_TRAINING_STAGE)

    assert [s["name"] for s in rank1["stages"]] == TRAINING_STAGES, "rank 1 runs the stages that train, not export"
    trained_by_both = [s for s in rank0["stages"] if s["name"] in TRAINING_STAGES]
    assert trained_by_both == rank1["stages"], "every rank ends every training stage with the same structure and weights"
    pruned = next(s for s in rank0["stages"] if s["name"] == "prune")["model"]["shapes"]
    assert pruned["features.0.0.weight"][0] < 8, "channels were really removed"

    assert sum(len(idxs) for step in rank0["removed"] for _, _, idxs in step) > 0
    assert rank0["removed"] == rank1["removed"], "the same channel indices are removed on every rank"

    assert rank1["writes"] == [] and rank0["writes"], "only rank 0 writes the run folder"
    report = json.loads((out / "report.json").read_text())
    assert [s["status"] for s in report["stages"]] == ["ran"] * 8
    history = json.loads((out / "01-train" / "metrics.json").read_text())["history"]
    assert len(history) == 1 and history[0]["val_accuracy"] > 0


def test_a_rank_killed_mid_stage_stops_the_run_and_it_resumes_in_one_process(write_recipe, tmp_path, capfd):
    recipe = {**EVERY_TRAINING_STAGE, "stages": EVERY_TRAINING_STAGE["stages"][:3]}
    with pytest.raises(RankFailed) as failed:
        run_ranks(write_recipe, tmp_path, recipe, kill_stage="aux_heads")
    assert "rank 1 of 2 stopped" in str(failed.value) and "run the same command again" in str(failed.value)
    out = tmp_path / "run"
    assert (out / "01-train" / "state.json").exists()
    assert not (out / "02-aux_heads" / "state.json").exists(), "the stage in progress is not committed"

    resumed = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(write_recipe(recipe)), "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after 01-train" in resumed.stderr
    report = json.loads((out / "report.json").read_text())
    assert [s["status"] for s in report["stages"]] == ["resumed", "ran", "ran"]


def test_a_run_folder_the_other_ranks_cannot_read_is_refused_before_any_work(write_recipe, tmp_path, capfd):
    recipe = {**EVERY_TRAINING_STAGE, "stages": EVERY_TRAINING_STAGE["stages"][:1]}
    records = tmp_path / "records"
    records.mkdir()
    with pytest.raises(RankFailed):
        launch(2, [str(write_recipe(recipe)), str(tmp_path / "run{rank}"), str(records)], module="tests.distributed_driver")
    assert "is not shared by every process: rank 1 on " in capfd.readouterr().err
    assert not (tmp_path / "run0" / "01-train").exists()


def test_compress_run_nproc_trains_in_two_processes(write_recipe, tmp_path):
    recipe = {**EVERY_TRAINING_STAGE, "stages": [{"train": {"epochs": 1, "lr": 0.01}}, {"export": {}}]}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(write_recipe(recipe)), "--out", str(tmp_path / "run"), "--nproc", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "train: 2 processes x 32 samples = global batch 64" in done.stderr
    assert "export: " in done.stderr and "(rank 0 alone)" in done.stderr
    assert done.stdout.count("01-train") == 1, "one summary table, from rank 0"


def test_nproc_inside_torchrun_is_refused(write_recipe, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    result = CliRunner().invoke(main, ["run", str(write_recipe(EVERY_TRAINING_STAGE)), "--nproc", "2"])
    assert result.exit_code == 1 and "already started by torchrun" in result.output


def test_one_process_is_rank_0_of_1_and_collectives_are_identities():
    assert distributed.world() == distributed.World(0, 1, 0) and not distributed.launched()
    assert distributed.once(lambda: 7) == 7 and distributed.broadcast("x") == "x" and distributed.gather(3) == [3]
    assert distributed.shard(5).tolist() == [0, 1, 2, 3, 4]
    with distributed.solo():
        assert distributed.world().size == 1


def test_nested_widths_train_in_two_processes(write_recipe, tmp_path):
    stages = [{"nested": {"widths": [0.25, 0.5, 1.0], "train": {"epochs": 1, "lr": 0.01}}}, {"export": {}}]
    out, (rank0, rank1) = run_ranks(write_recipe, tmp_path, {**EVERY_TRAINING_STAGE, "stages": stages})
    assert [s["name"] for s in rank1["stages"]] == ["nested"]
    assert rank0["stages"][:1] == rank1["stages"], "both ranks end with the same weights"
    report = json.loads((out / "report.json").read_text())
    assert {"onnx_fp32@w0.25", "onnx_fp32@w0.5"} <= set(report["artifacts"])
    assert (out / "01-nested" / "model-w0.25.pt").is_file() and rank1["writes"] == []
