"""The file each device ships is chosen on the validation split; the test split only judges it, after.

The data's test split is its validation images with every label moved to the next class, so every
file scores near 0 on test and well on validation. A choice that read test figures would see every
file break `min_accuracy` and fall back to the fastest, narrowest file; a choice on validation ships
the widest width that meets the budgets, and the gate then fails it on test, as it must.
"""

import json

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from tests.stages.helpers import MISLABELLED_TEST

RECIPE = {
    "name": "chosen-on-validation",
    "seed": 0,
    "data": {**MISLABELLED_TEST, "train_subset": 1500, "test_subset": 200, "batch_size": 64},
    "model": {"name": "tiny_cnn"},
    "stages": [
        {"nested": {"widths": [0.5, 1.0], "train": {"epochs": 3, "lr": 0.01}}},
        {"export": {}},
        {"quantize": {"calibration_samples": 128, "min_top1_agreement": 0.5}},
        {"validate": {"runs": 20}},
    ],
}


def accuracy_floor(tmp_path, lenient_device, floor: float, prefer: str = "latency"):
    profile = yaml.safe_load(lenient_device.read_text())
    profile.update(name=f"floor-{prefer}", prefer=prefer)
    profile["budgets"] = {"max_size_kb": 4096, "min_accuracy": floor}
    path = tmp_path / f"floor-{prefer}.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_the_widest_file_passing_on_validation_ships_and_the_gate_judges_it_on_test(tmp_path, write_recipe, lenient_device):
    recipe = write_recipe({**RECIPE, "devices": [str(accuracy_floor(tmp_path, lenient_device, 0.4)), str(accuracy_floor(tmp_path, lenient_device, 0.4, "accuracy"))]})
    out = tmp_path / "run"
    cli = CliRunner()
    result = cli.invoke(main, ["run", str(recipe), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["reference"]["val_accuracy"] > 0.5 and report["reference"]["accuracy"] < 0.15

    for device in ("floor-latency", "floor-accuracy"):
        entry = report["devices"][device]
        assert entry["artifact"] in ("onnx_fp32", "onnx_int8"), "the full width meets min_accuracy on validation"
        assert entry["choice"]["chosen_on"] == "validation"
        assert entry["choice"]["reason"].startswith("width 1 is the widest that meets every budget")
        assert entry["passed_on_validation"] is True and entry["val_accuracy"] > 0.4
        assert entry["val_accuracy_drop_points"] == pytest.approx((report["reference"]["val_accuracy"] - entry["val_accuracy"]) * 100, abs=1e-3)
        assert entry["passed"] is False and entry["budgets"]["min_accuracy"]["value"] < 0.15, "the verdict is the test split's"
        for figures in entry["choice"]["candidates"].values():
            assert figures["val_accuracy"] > figures["accuracy"] + 0.3
    full_width = [c for name, c in report["devices"]["floor-accuracy"]["choice"]["candidates"].items() if "@w" not in name]
    assert report["devices"]["floor-accuracy"]["val_accuracy"] == max(c["val_accuracy"] for c in full_width)

    gated = cli.invoke(main, ["gate", str(out)])
    assert gated.exit_code == 1, gated.output
