"""Nested widths through the whole recipe: one training, a file per width and precision, each device
given the widest width within its budgets, the bundle carrying that file, and a resume that keeps them."""

import json
import math
import zipfile

import onnx
import yaml
from click.testing import CliRunner

from pipeline.cli import main

RECIPE = {
    "name": "nested",
    "seed": 0,
    "data": {"source": "embedded", "train_subset": 600, "test_subset": 300, "batch_size": 64},
    "model": {"name": "tiny_cnn"},
    "stages": [
        {"nested": {"widths": [0.5, 1.0], "train": {"epochs": 1, "lr": 0.01}}},
        {"export": {}},
        {"quantize": {"calibration_samples": 128}},
        {"validate": {"runs": 20}},
    ],
}


def parameters(model: onnx.ModelProto) -> int:
    return sum(math.prod(t.dims) for t in model.graph.initializer)


def small_storage(tmp_path, lenient_device):
    """The lenient board with 20 KiB of storage: the full width's files (≈ 24-63 KiB) do not fit, half width's do."""
    profile = yaml.safe_load(lenient_device.read_text())
    profile.update(name="small-storage")
    profile["budgets"] = {**profile["budgets"], "max_size_kb": 20, "min_accuracy": 0.0, "max_accuracy_drop": 100}
    path = tmp_path / "small-storage.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_one_training_ships_each_device_its_widest_width_within_budget(tmp_path, write_recipe, lenient_device):
    recipe = write_recipe({**RECIPE, "devices": [str(lenient_device), str(small_storage(tmp_path, lenient_device))]})
    out = tmp_path / "run"
    cli = CliRunner()
    result = cli.invoke(main, ["run", str(recipe), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output

    report = json.loads((out / "report.json").read_text())
    artifacts = report["artifacts"]
    assert {"onnx_fp32", "onnx_int8", "onnx_fp32@w0.5", "onnx_int8@w0.5"} <= set(artifacts) <= set(report["artifact_sha256"])
    full, half = (onnx.load(str(out / artifacts[name])) for name in ("onnx_fp32", "onnx_fp32@w0.5"))
    assert parameters(half) < parameters(full) / 2 and len(half.graph.output) == 1
    assert {p.key: p.value for p in half.metadata_props}["width"] == "0.5"

    devices = report["devices"]
    assert devices["lenient"]["artifact"] in ("onnx_fp32", "onnx_int8"), "every budget met at full width: the full width ships"
    small = devices["small-storage"]
    assert small["artifact"] in ("onnx_fp32@w0.5", "onnx_int8@w0.5") and small["passed"] is True
    assert small["choice"]["reason"].startswith("width 0.5 is the widest that meets every budget (width 1 breaks max_size_kb")
    assert set(small["choice"]["candidates"]) == {"onnx_fp32", "onnx_int8", "onnx_fp32@w0.5", "onnx_int8@w0.5"}
    validate = json.loads((out / "04-validate" / "metrics.json").read_text())
    assert set(validate["variants"]) == set(small["choice"]["candidates"])

    bundle = tmp_path / "small.zip"
    bundled = cli.invoke(main, ["bundle", str(out), "--device", str(small_storage(tmp_path, lenient_device)), "-o", str(bundle)])
    assert bundled.exit_code == 0, bundled.output
    names = zipfile.ZipFile(bundle).namelist()
    assert f"model/{(out / artifacts[small['artifact']]).name}" in names

    again = cli.invoke(main, ["run", str(recipe), "--out", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    resumed = json.loads((out / "report.json").read_text())
    assert [s["status"] for s in resumed["stages"]] == ["resumed"] * 4 and resumed["devices"]["small-storage"]["artifact"] == small["artifact"]
