"""A whole recipe through every runtime: export builds ExecuTorch, ncnn and OpenVINO files beside
ONNX, quantize makes the INT8 twins where a runtime has a path, validate ships each device a file of
a runtime its profile admits, and each runtime's bundle runs on a board without torch."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from devices.on_device import validate_on_device as on_device
from pipeline.cli import main
from tests.conftest import TINY_RECIPE
from tests.devices.test_on_device import without_torch

BOARD = {
    "description": "test board", "cpu": "x86-64", "cores": 1, "threads": 1, "int8_dot_product": True, "memory_mb": 512, "storage_mb": 1024,
    "latency_factor": 2.0, "latency_factor_source": "nominal", "latency_factor_note": "made up for the test", "sources": ["tests"],
    "budgets": {"max_size_kb": 4096, "max_latency_p90_ms": 1000, "min_accuracy": 0.2, "max_peak_memory_mb": 4096},
}


def profile(folder: Path, name: str, runtimes: list[str]) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **BOARD, "runtimes": runtimes}))
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runtimes")
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["stages"] = [
        {"train": {"epochs": 2, "lr": 0.01}},
        {"export": {"runtimes": "auto"}},
        {"quantize": {"calibration_samples": 64, "min_top1_agreement": 0.5}},
        {"validate": {"runs": 20, "warmup": 2}},
    ]
    recipe["devices"] = [profile(folder, "ncnn-board", ["ncnn"]), profile(folder, "openvino-box", ["openvino", "onnxruntime"]), profile(folder, "phone", ["executorch"])]
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    # A process of its own, as a user's run is (the CLI's exit code and stderr, not CliRunner's)
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(folder / "recipe.yaml"), "--out", str(folder / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "run"


def test_every_runtime_the_devices_admit_is_built_and_checked(run):
    report = json.loads((run / "report.json").read_text())
    assert set(report["artifacts"]) >= {"onnx_fp32", "onnx_int8", "executorch_fp32", "executorch_int8", "ncnn_fp32", "openvino_fp32", "openvino_int8"}
    assert "ncnn_int8" not in report["artifacts"], "no INT8 path for ncnn from the pip packages: none claimed"
    export = json.loads((run / "02-export" / "metrics.json").read_text())["runtimes"]
    assert all(row["parity"]["max_abs_diff"] <= 1e-3 and row["parity"]["top1_agreement"] >= 0.99 for row in export.values())
    assert {row["parity"]["runtime"] for row in export.values()} == {"executorch", "ncnn", "openvino"}


def test_each_device_gets_a_file_of_a_runtime_it_runs(run):
    devices = json.loads((run / "report.json").read_text())["devices"]
    assert devices["ncnn-board"]["artifact"] == "ncnn_fp32" and devices["ncnn-board"]["runtime"] == "ncnn"
    assert set(devices["ncnn-board"]["choice"]["candidates"]) == {"ncnn_fp32"}
    assert set(devices["openvino-box"]["choice"]["candidates"]) == {"onnx_fp32", "onnx_int8", "openvino_fp32", "openvino_int8"}
    assert devices["phone"]["runtime"] == "executorch" and set(devices["phone"]["choice"]["candidates"]) == {"executorch_fp32", "executorch_int8"}
    for entry in devices.values():
        assert entry["choice"]["candidates"][entry["artifact"]]["runtime"] == entry["runtime"]


@pytest.mark.parametrize("device", ["ncnn-board", "openvino-box"])
def test_each_runtimes_bundle_runs_on_a_board_without_torch(run, tmp_path, device):
    bundle = tmp_path / "b.zip"
    made = CliRunner().invoke(main, ["bundle", str(run), "--device", str(run.parent / f"{device}.yaml"), "-o", str(bundle), "--samples", "60"])
    assert made.exit_code == 0, made.output
    done = subprocess.run([sys.executable, on_device.__file__, str(bundle), "--out", str(tmp_path / "r.json")],
                          cwd=tmp_path, env=without_torch(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1) and (tmp_path / "r.json").is_file(), done.stderr[-3000:]
    results = json.loads((tmp_path / "r.json").read_text())
    runtime = json.loads((run / "report.json").read_text())["devices"][device]["runtime"]
    assert results["platform"]["runtime"] == runtime and results["agreement_with_host"] == 1.0
    calibrated = tmp_path / "calibrated.yaml"
    done = CliRunner().invoke(main, ["devices", "calibrate", str(run.parent / f"{device}.yaml"), str(tmp_path / "r.json"), "--run", str(run), "-o", str(calibrated)])
    assert done.exit_code == 0, done.output
    profile = yaml.safe_load(calibrated.read_text())
    if runtime == "onnxruntime":
        assert not profile.get("runtime_factors") and profile["latency_factor_source"] == "calibrated"
    else:  # an Arm-tuned runtime gains differently on a board: its own factor, the profile's stays for the others
        assert set(profile["runtime_factors"]) == {runtime} and profile["latency_factor"] == BOARD["latency_factor"]
        assert f"{runtime}: calibrated" in profile["runtime_factors_note"]


def test_a_bundle_run_without_its_runtime_names_the_package(run, tmp_path):
    bundle = tmp_path / "b.zip"
    assert CliRunner().invoke(main, ["bundle", str(run), "--device", str(run.parent / "ncnn-board.yaml"), "-o", str(bundle), "--samples", "20"]).exit_code == 0
    env = without_torch(tmp_path)
    shadow = Path(env["PYTHONPATH"]) / "ncnn"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('no ncnn on this board')\n")
    done = subprocess.run([sys.executable, on_device.__file__, str(bundle)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "runtime ncnn is not installed here: pip install ncnn" in done.stderr


def test_openvino_after_streamed_data_runs_to_the_end(tmp_path):
    """Images read by DataLoader workers, then OpenVINO files checked, quantized and timed in one
    process: the run used to die with SIGSEGV after writing its report (see docs/design.md)."""
    from tests.data.test_streamed_sources import write_images

    write_images(tmp_path / "images" / "train", per_class=24, size=(28, 28))
    write_images(tmp_path / "images" / "test", per_class=8, size=(28, 28), seed=1)
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["data"] = {"source": "image_folder", "path": str(tmp_path / "images"), "batch_size": 16, "workers": 2}
    recipe["stages"] = [
        {"train": {"epochs": 1, "lr": 0.01}},
        {"export": {"runtimes": ["openvino"], "parity_samples": 16}},
        {"quantize": {"calibration_samples": 32, "parity_samples": 24, "min_top1_agreement": 0.3}},
        {"validate": {"runs": 20, "warmup": 2}},
    ]
    recipe["devices"] = [profile(tmp_path, "openvino-box", ["openvino", "onnxruntime"])]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert {"openvino_fp32", "openvino_int8"} <= set(json.loads((tmp_path / "run" / "report.json").read_text())["artifacts"])
