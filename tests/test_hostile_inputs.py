"""Hostile and odd inputs through the command line: each is one paragraph naming the field, file or
value and the fix, a non-zero exit, no traceback, and nothing written that a later run would trust."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_paragraph(result, *expected):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    for text in expected:
        assert text in result.output, result.output


def train_only(recipe: dict, data: dict) -> dict:
    return {**recipe, "data": {**data, "batch_size": 64}, "stages": [{"train": {"epochs": 1, "lr": 0.01}}], "devices": []}


@pytest.mark.parametrize(
    "factory, expected",
    [
        ("float_label_late", "train item 197's label is 1.5; labels are int class indices 0..2"),
        ("label_out_of_range_late", "train item 197's label 7 is outside 0..2 (3 classes)"),
        ("nan_pixels_late", "train item 197 has NaN or infinite pixel values"),
    ],
)
def test_a_bad_label_deep_in_a_users_dataset_stops_the_run_by_name(tmp_path, tiny_recipe, write_recipe, factory, expected):
    """Past the first items checked before training: every label is checked as it streams."""
    recipe = train_only(tiny_recipe, {"source": "dataset", "factory": f"tests.data.user_datasets:{factory}", "workers": 0, "val_fraction": 0.01})
    out = tmp_path / "run"
    result = invoke("run", write_recipe(recipe), "--out", out, "--quiet")
    one_paragraph(result, expected)
    assert not list(out.glob("01-train*/metrics.json")), "no finished stage from bad data"


def write_folder(root, classes=("cat", "dog", "owl"), per_class=6, size=12):
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", 2)):
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.clip(rng.normal(60 + 60 * k, 20, (size, size)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L").save(root / split / name / f"{i}.png")


@pytest.mark.parametrize(
    "damage, data, expected",
    [
        (lambda r: [(p.unlink(), p.symlink_to(r / "gone.png")) for p in (r / "train" / "owl").glob("*.png")], {}, "which does not exist"),
        (lambda r: (r / "train" / "emu").mkdir(), {}, "class folder"),
        (lambda r: None, {"input_size": 0}, "data.input_size"),
        (lambda r: None, {"input_size": [12, 12, 3]}, "data.input_size"),
        (lambda r: None, {"channels": 2}, "data.channels"),
    ],
)
def test_a_damaged_image_folder_is_one_paragraph(tmp_path, tiny_recipe, write_recipe, damage, data, expected):
    root = tmp_path / "images"
    write_folder(root)
    damage(root)
    recipe = train_only(tiny_recipe, {"source": "image_folder", "path": str(root), "workers": 0, **data})
    one_paragraph(invoke("run", write_recipe(recipe), "--out", tmp_path / "run", "--quiet"), expected)


def test_macos_companion_files_are_passed_over(tmp_path, tiny_recipe, write_recipe):
    root = tmp_path / "images"
    write_folder(root)
    for path in list(root.glob("*/*/*.png")):
        (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    recipe = train_only(tiny_recipe, {"source": "image_folder", "path": str(root), "workers": 0})
    result = invoke("run", write_recipe(recipe), "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output


def test_a_full_disk_mid_stage_is_one_paragraph_keeps_finished_stages_and_resumes(small_disk, tiny_recipe, write_recipe):
    import shutil

    recipe = {**tiny_recipe, "stages": [{"train": {"epochs": 1, "lr": 0.01}}, {"export": {}}], "devices": []}
    path, out = write_recipe(recipe), small_disk / "run"
    first = invoke("run", write_recipe({**recipe, "stages": recipe["stages"][:1]}, "train.yaml"), "--out", out, "--quiet")
    assert first.exit_code == 0, first.output
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 20_000))  # the export's checkpoint and ONNX file need more
    full = invoke("run", path, "--out", out, "--quiet")
    one_paragraph(full, f"the disk holding the run folder {out} is full", "stage 02-export was writing", "free at least", "(01-train) are kept and resume")
    assert (out / "01-train" / "state.json").is_file() and not (out / "02-export").exists()
    filler.unlink()
    again = invoke("run", path, "--out", out)
    assert again.exit_code == 0, again.output
    assert "resuming after 01-train" in again.output


def test_a_stage_that_hits_enospc_names_the_disk(tmp_path, tiny_recipe, write_recipe, monkeypatch):
    """Where no small disk can be mounted, the same path: an OSError ENOSPC from the checkpoint writer."""
    import errno

    from pipeline import runner

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "save_model", no_space)
    recipe = {**tiny_recipe, "stages": [{"train": {"epochs": 1, "lr": 0.01}}], "devices": []}
    result = invoke("run", write_recipe(recipe), "--out", tmp_path / "run", "--quiet")
    one_paragraph(result, "is full", "stage 01-train was writing (OSError", "no stage had finished")


def test_a_bundle_path_that_cannot_be_written_is_refused_before_any_work(finished_run, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    one_paragraph(invoke("bundle", finished_run, "--device", "host", "-o", a_file / "bundle.zip"), f"cannot write {a_file / 'bundle.zip'}", "-o")
    one_paragraph(invoke("bundle", finished_run, "--device", "host", "-o", tmp_path), "is a directory")
    assert not list(tmp_path.glob(".*.partial"))


def test_a_device_the_run_never_judged_gets_no_bundle_unless_a_file_is_named(finished_run, tmp_path, caplog):
    out = tmp_path / "jetson.zip"
    refused = invoke("bundle", finished_run, "--device", "jetson-nano-cpu", "-o", out)
    one_paragraph(refused, "never judged device jetson-nano-cpu (its validate judged: host, raspberry-pi-4)", "--artifact with one of: onnx_fp32, onnx_int8")
    assert not out.exists()
    with caplog.at_level("WARNING", logger="compress"):
        packed = invoke("bundle", finished_run, "--device", "jetson-nano-cpu", "-o", out, "--artifact", "onnx_fp32", "--samples", "20")
    assert packed.exit_code == 0, packed.output
    assert "without expected latency or accuracy figures" in caplog.text and out.is_file()
    one_paragraph(invoke("bundle", finished_run, "--device", "host", "-o", out, "--artifact", "ncnn_int8"), "--artifact ncnn_int8: the run at", "has no such file; it has: onnx_fp32, onnx_int8")


def test_the_script_copied_out_beside_the_zip_reads_its_runtimes_from_the_zip(finished_run, tmp_path):
    """`unzip bundle.zip validate_on_device.py && python3 validate_on_device.py bundle.zip`: nothing else beside it."""
    import subprocess
    import sys
    import zipfile

    board = tmp_path / "board"
    board.mkdir()
    bundle = board / "bundle.zip"
    assert invoke("bundle", finished_run, "--device", "host", "-o", bundle, "--samples", "50").exit_code == 0
    with zipfile.ZipFile(bundle) as archive:
        archive.extract("validate_on_device.py", board)
    shadow = tmp_path / "shadow"  # neither torch nor the project on this "board"
    for name in ("torch", "pipeline", "exporters", "devices", "runtimes"):
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('{name} is not on this board')\n")
    done = subprocess.run(
        [sys.executable, "validate_on_device.py", "bundle.zip"], cwd=board, env={"PYTHONPATH": str(shadow), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "verdict:" in done.stdout and (board / "results.json").is_file()


def test_nproc_with_an_unusable_out_is_one_paragraph_before_any_process_starts(tmp_path, tiny_recipe, write_recipe):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = invoke("run", write_recipe(tiny_recipe), "--nproc", "2", "--out", a_file / "run")
    one_paragraph(result, f"cannot write to the output folder {a_file / 'run'}", "--out")
    assert "rank" not in result.output


def test_more_processes_than_cores_is_a_warning(tmp_path, tiny_recipe, write_recipe, monkeypatch, caplog):
    import os

    import torch.distributed.launcher.api as api

    started = []
    monkeypatch.setattr(api, "elastic_launch", lambda config, entry: lambda *args: started.append(config.nproc_per_node))
    cores = len(os.sched_getaffinity(0))
    with caplog.at_level("WARNING", logger="compress"):
        result = invoke("run", write_recipe(tiny_recipe), "--nproc", cores + 1, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert started == [cores + 1]
    assert f"--nproc {cores + 1} is more than the {cores} core(s)" in caplog.text and f"than with --nproc {cores}" in caplog.text


def test_validation_kept_above_its_cap_is_a_warning_naming_the_setting(caplog):
    from pipeline.data import DataConfig, load_data

    with caplog.at_level("WARNING", logger="compress"):
        data = load_data(DataConfig(train_subset=500, train_on_validation=True, validation_kept=20), seed=1)
    assert len(data.val) == 10
    assert "data.validation_kept: 20 asked, but at most a fifth of the 50-image validation split is kept back, so 10 are" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="compress"):
        load_data(DataConfig(train_subset=500, train_on_validation=True, validation_kept=10), seed=1)
    assert "validation_kept" not in caplog.text


def test_a_weight_change_after_nested_widths_warns_that_they_are_dropped(tmp_path, tiny_recipe, write_recipe, caplog):
    recipe = {
        **tiny_recipe, "devices": [],
        "stages": [{"nested": {"widths": [0.5, 1.0], "train": {"epochs": 1, "lr": 0.01}}}, {"prune": {"target": {"keep_macs": 0.8}, "finetune": {"epochs": 1}}}],
    }
    with caplog.at_level("WARNING", logger="compress"):
        result = invoke("run", write_recipe(recipe), "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    assert "prune changed the weights after the nested widths [0.5, 1.0] were made, so they are dropped" in caplog.text
