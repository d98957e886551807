"""The bundle on an emulated Arm board: the loopback SSH board whose Python is Debian's aarch64 Python
under qemu-user (`tests/boards/arm64_root.sh` builds it; .ci/run does), so the torch-free script and
ONNX Runtime's Arm kernels run on the Arm instruction set. Predictions must agree with the host's:
all of them for the FP32 file, and for INT8 at least what the quantize stage demands of an INT8 file
against its FP32 one. Timings under emulation are never a device's: the results say so.

    pytest -m "not emulated"      # skips these where the Arm root is not built
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.stages.quantize import QuantizeConfig

pytestmark = pytest.mark.emulated
ARM_ROOT = Path(os.environ.get("EDGE_COMPRESS_ARM64_ROOT", "/var/cache/edge-compress/arm64"))


@pytest.fixture(scope="module")
def arm_python() -> Path:
    python = ARM_ROOT / "python"
    if not python.is_file():
        pytest.fail(f"no emulated Arm Python at {python}: run `bash tests/boards/arm64_root.sh` once (.ci/run does), "
                    "or skip these tests with -m 'not emulated'")
    return python


def test_the_bundle_runs_on_arm_and_agrees_with_the_host(finished_run, board_profile, arm_python, tmp_path):
    profile = board_profile("raspberry-pi-4", profile={"runtimes": ["onnxruntime"]}, python=str(arm_python), emulated=True, timeout_s=900)
    int8_rule = QuantizeConfig.model_fields["min_top1_agreement"].default
    for artifact, least in (("onnx_fp32", 1.0), ("onnx_int8", int8_rule)):
        done = CliRunner().invoke(main, ["board", "run", str(finished_run), "--device", str(profile), "--artifact", artifact,
                                         "--samples", "200", "--out", str(tmp_path / artifact)])
        assert done.exit_code in (0, 1), done.output
        results = json.loads((tmp_path / artifact / "board.results.json").read_text())
        assert results["platform"]["machine"] == "aarch64" and results["artifact"] == artifact
        assert results["agreement_with_host"] >= least, f"{artifact}: {results['agreement_with_host']} of the host's predictions on Arm"
        assert results["board"]["timing"] == "emulated: not a device timing" and "emulated: not a device timing" in done.output
        assert "not judged under emulation (not the device's time or memory): max_latency_p90_ms, max_peak_memory_mb" in done.output


@pytest.fixture(scope="module")
def ncnn_run(tmp_path_factory) -> Path:
    """A tiny run exported to ONNX and ncnn (FP32: the pip ncnn has no INT8 tool) for the Pi 4."""
    from pipeline.recipe import parse_recipe
    from pipeline.runner import run_recipe
    from tests.conftest import finished_run_recipe

    recipe = finished_run_recipe()
    recipe["stages"] = [{"train": {"epochs": 2, "lr": 0.01}}, {"export": {"runtimes": ["onnxruntime", "ncnn"]}}, {"validate": {"runs": 20, "warmup": 2}}]
    recipe["devices"] = ["raspberry-pi-4"]
    out = tmp_path_factory.mktemp("ncnn-run") / "tiny-ncnn"
    run_recipe(parse_recipe(recipe), out, quiet=True)
    return out


def test_the_ncnn_file_runs_on_arm_and_agrees_with_the_host(ncnn_run, board_profile, arm_python, tmp_path):
    profile = board_profile("raspberry-pi-4", profile={"runtimes": ["ncnn"]}, python=str(arm_python), emulated=True, timeout_s=900)
    done = CliRunner().invoke(main, ["board", "run", str(ncnn_run), "--device", str(profile), "--artifact", "ncnn_fp32",
                                     "--samples", "200", "--out", str(tmp_path / "ncnn")])
    assert done.exit_code in (0, 1), done.output
    results = json.loads((tmp_path / "ncnn" / "board.results.json").read_text())
    assert results["platform"]["machine"] == "aarch64" and results["platform"]["runtime"] == "ncnn"
    assert results["agreement_with_host"] == 1.0, f"ncnn FP32 agrees with the host on {results['agreement_with_host']} of the samples on Arm"


def test_int8_with_full_range_weights_agrees_on_arm(finished_run, board_profile, arm_python, tmp_path):
    """8-bit weights (`reduce_range: false`, what Arm's kernels take without overflow) quantized here, run on Arm."""
    from pipeline.recipe import parse_recipe
    from pipeline.runner import run_recipe
    from tests.conftest import finished_run_recipe

    recipe = finished_run_recipe()
    recipe["stages"][2]["quantize"]["reduce_range"] = False
    out = tmp_path / "full-range"
    shutil.copytree(finished_run, out)  # train and export are reused: only quantize and validate run again
    run_recipe(parse_recipe(recipe), out, quiet=True)
    profile = board_profile("raspberry-pi-4", profile={"runtimes": ["onnxruntime"]}, python=str(arm_python), emulated=True, timeout_s=900)
    done = CliRunner().invoke(main, ["board", "run", str(out), "--device", str(profile), "--artifact", "onnx_int8", "--samples", "200",
                                     "--out", str(tmp_path / "int8")])
    assert done.exit_code in (0, 1), done.output
    results = json.loads((tmp_path / "int8" / "board.results.json").read_text())
    assert results["platform"]["machine"] == "aarch64"
    assert results["agreement_with_host"] >= QuantizeConfig.model_fields["min_top1_agreement"].default


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory) -> Path:
    """A tiny detection run (scenes from the embedded images) for the Pi 4: FP32 and INT8 files."""
    from pipeline.recipe import parse_recipe
    from pipeline.runner import run_recipe
    from tests.tasks.detection_data import tiny_scenes
    from tests.tasks.test_detection_stages import detection_recipe

    scenes = tiny_scenes(tmp_path_factory.mktemp("scenes"))
    recipe = detection_recipe(scenes, [{"train": {"epochs": 3, "lr": 0.01}}, {"export": {}}, {"quantize": {"calibration_samples": 32, "min_top1_agreement": 0.5}},
                                       {"validate": {"runs": 20, "warmup": 2}}])
    recipe["devices"] = ["raspberry-pi-4"]
    out = tmp_path_factory.mktemp("detection-run") / "tiny-det"
    run_recipe(parse_recipe(recipe), out, quiet=True)
    return out


def test_a_detector_decodes_and_scores_map_on_arm_as_on_the_host(detection_run, board_profile, arm_python, tmp_path):
    """numpy NMS and pycocotools on the Arm board: the same objects as the host, the same mAP."""
    profile = board_profile("raspberry-pi-4", profile={"runtimes": ["onnxruntime"]}, python=str(arm_python), emulated=True, timeout_s=900)
    done = CliRunner().invoke(main, ["board", "run", str(detection_run), "--device", str(profile), "--artifact", "onnx_fp32", "--out", str(tmp_path / "det")])
    assert done.exit_code in (0, 1), done.output
    results = json.loads((tmp_path / "det" / "board.results.json").read_text())
    assert results["platform"]["machine"] == "aarch64"
    assert results["agreement_with_host"] == 1.0
    assert results["accuracy"] == pytest.approx(results["expected"]["sample_accuracy"], abs=1e-4)  # mAP, by pycocotools on Arm
    assert "max_map_drop" in results["budgets"] and "min_accuracy" not in results["budgets"]
    assert results["latency_ms"]["runs"] < 200, "an emulated board's timing is never judged: it is capped short, not run to the device's 200 runs"
