"""A runtime is described once: its runner (the device's side) and its exporter (the host's side).
Every table of runtimes (profiles' choices, artifact names, file names, the bundle's README, the
INT8 paths) is read from the two, and they list the same runtimes."""

import pytest
import torch

from devices.on_device.runtimes import RUNNERS, model_files, runner, runtime_of
from exporters import EXPORTERS
from exporters.runtime_exporter import RuntimeExporter
from pipeline.core.state import RUNTIME_OF_FORMAT, artifact_runtime, runtime_artifact
from pipeline.deploy.bundle import torch_note
from pipeline.deploy.profiles import RUNTIMES
from pipeline.runtime.runtime_exports import export_for_runtime, file_name
from pipeline.core.errors import StageError


def test_every_runner_has_an_exporter_and_every_exporter_a_runner():
    assert list(RUNNERS) == list(EXPORTERS) == list(RUNTIMES) == ["onnxruntime", "openvino", "ncnn", "executorch"]


@pytest.mark.parametrize("runtime", list(RUNNERS))
def test_names_read_from_the_descriptors_go_back_to_the_runtime(runtime, tmp_path):
    name = file_name("model-w0.5", runtime)
    assert runtime_of(tmp_path / name) == runtime
    assert len(model_files(tmp_path / name)) == (2 if RUNNERS[runtime].weights_beside else 1)
    assert artifact_runtime(runtime_artifact(runtime, "int8", 0.5)) == runtime
    assert RUNTIME_OF_FORMAT[RUNNERS[runtime].artifact_format] == runtime


def test_file_names_and_artifact_names_are_the_documented_ones():
    assert [file_name("model", r) for r in RUNNERS] == ["model.onnx", "model.xml", "model.ncnn.param", "model.pte"]
    assert [runtime_artifact(r, "fp32") for r in RUNNERS] == ["onnx_fp32", "openvino_fp32", "ncnn_fp32", "executorch_fp32"]


def test_only_executorch_tells_the_bundle_it_needs_torch():
    assert torch_note("onnxruntime") == "; no torch"
    assert "libtorch" in torch_note("executorch")


def test_a_runtime_registered_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        runner(type("Again", (), {"runtime": "onnxruntime"}))


def test_an_exporter_says_how_its_int8_file_is_made_or_why_there_is_none():
    with pytest.raises(ValueError, match="one of the two"):
        RuntimeExporter("x", None, int8="")
    with pytest.raises(ValueError, match="one of the two"):
        RuntimeExporter("x", None, int8="somehow", no_int8="and not")
    assert EXPORTERS["ncnn"].no_int8 and not EXPORTERS["ncnn"].int8
    assert EXPORTERS["openvino"].int8_from_qdq and not EXPORTERS["executorch"].int8_from_qdq


def test_an_int8_file_for_a_runtime_without_an_int8_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no INT8 file: the pip packages of ncnn"):
        EXPORTERS["ncnn"].make(torch.nn.Identity(), tmp_path / "m.onnx", tmp_path / "m.ncnn.param", torch.zeros(1, 1, 4, 4), {}, int8_calibration=torch.zeros(1, 1, 4, 4))


def test_the_onnx_file_is_not_remade_as_another_runtimes_file(tmp_path):
    with pytest.raises(StageError, match="export: no exporter for runtime onnxruntime"):
        export_for_runtime("onnxruntime", torch.nn.Identity(), tmp_path / "m.onnx", tmp_path / "x.onnx", torch.zeros(1, 1, 4, 4), {}, "export")
    with pytest.raises(StageError, match="no exporter for runtime tflite"):
        export_for_runtime("tflite", torch.nn.Identity(), tmp_path / "m.onnx", tmp_path / "x.tflite", torch.zeros(1, 1, 4, 4), {}, "export")
