"""The ExecuTorch, ncnn and OpenVINO exporters: files written, parity in each runtime, one output,
the input shape kept, a wrong file refused and named, INT8 files that really run INT8 kernels."""

from pathlib import Path

import numpy as np
import pytest
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static
from torch import nn

from devices.on_device.runtimes import model_files, open_runner, runtime_of
from exporters import ExportUnsupported, ParityError, export_onnx
from exporters.executorch import export_executorch
from exporters.ncnn import export_ncnn
from exporters.openvino import export_openvino
from exporters.parity import check_parity
from tests.exporters.test_onnx import TracesDifferently


class SmallCNN(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(2 * width, 5)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def small(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN(width).eval()


def export(runtime: str, module: nn.Module, folder, x: torch.Tensor, **tolerances):
    """The runtime's file of `module`; OpenVINO's from a checked ONNX file, as the pipeline makes it."""
    if runtime == "executorch":
        return export_executorch(module, folder / "m.pte", x, **tolerances)
    if runtime == "ncnn":
        return export_ncnn(module, folder / "m.ncnn.param", x, **tolerances)
    export_onnx(module, folder / "m.onnx", x)
    with torch.no_grad():
        expected = [module(x).numpy()]
    return export_openvino(folder / "m.onnx", folder / "m.xml", x.numpy(), expected, **tolerances)


@pytest.mark.parametrize("runtime", ["executorch", "ncnn", "openvino"])
def test_each_exporter_writes_a_file_its_runtime_runs_like_pytorch(tmp_path, runtime):
    module, x = small(), torch.randn(40, 1, 12, 12)
    result = export(runtime, module, tmp_path, x)
    assert result.runtime == runtime and result.parity_samples == 40
    assert result.max_abs_diff < 1e-4 and result.top1_agreement == 1.0
    assert runtime_of(result.path) == runtime and all(f.is_file() for f in model_files(result.path))
    outputs = open_runner(result.path, threads=1)(x[:3].numpy())
    assert len(outputs) == 1 and outputs[0].shape == (3, 5), "one output, the logits, for the input shape it was given"
    with torch.no_grad():
        assert np.abs(outputs[0] - module(x[:3]).numpy()).max() < 1e-4


def test_a_program_that_traces_differently_is_refused(tmp_path):
    with pytest.raises(ParityError, match="executorch export of m.pte disagrees with PyTorch.*output 0 first diverges"):
        export("executorch", TracesDifferently(), tmp_path, torch.randn(16, 1, 8, 8))
    assert not (tmp_path / "m.pte").exists() and (tmp_path / "m.pte.rejected").exists()
    with pytest.raises(ExportUnsupported, match="TorchScript trace, which failed: Tracing failed sanity checks"):
        export("ncnn", TracesDifferently(), tmp_path, torch.randn(16, 1, 8, 8))  # pnnx's trace catches it first


@pytest.mark.parametrize("runtime", ["ncnn", "openvino"])
def test_a_file_beyond_the_tolerance_is_refused_with_all_its_files(tmp_path, runtime):
    with pytest.raises(ParityError, match=f"{runtime} export of m.* disagrees with PyTorch.*output 0 first diverges"):
        export(runtime, small(), tmp_path, torch.randn(16, 1, 8, 8) * 100, max_abs_diff=1e-12)
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".param", ".xml", ".bin")], "nothing shippable is left behind"
    assert len([p for p in tmp_path.iterdir() if p.name.endswith(".rejected")]) == 2, "the graph and its weights"


def test_parity_names_the_first_output_that_diverges(tmp_path):
    (tmp_path / "m.pte").write_bytes(b"x")
    good, bad = np.zeros((4, 3), np.float32), np.eye(4, 3, dtype=np.float32)
    with pytest.raises(ParityError, match="openvino export of m.pte .*output 1 first diverges, max \\|diff\\| 1"):
        check_parity([good, good], [good, bad], tmp_path / "m.pte", "openvino", 1e-3, 0.99)
    check_parity([good], [good + 5e-4], tmp_path / "m.pte.rejected", "ncnn", 1e-3, 0.99)  # within the limit: passes


def test_an_operator_ncnn_cannot_take_is_named(tmp_path):
    class Sorts(SmallCNN):
        def forward(self, x):
            return torch.sort(super().forward(x), dim=1).values

    with pytest.raises(ExportUnsupported, match="ncnn has no layer for operator.s. aten::sort"):
        export_ncnn(Sorts().eval(), tmp_path / "m.ncnn.param", torch.randn(4, 1, 8, 8))


def test_executorch_int8_runs_in_xnnpack_int8_kernels(tmp_path):
    module, x = small(width=32), torch.randn(64, 1, 12, 12)  # 19 k weights: enough for their bytes to show in the file
    fp32 = export_executorch(module, tmp_path / "fp32.pte", x)
    int8 = export_executorch(module, tmp_path / "int8.pte", x[:16], int8_calibration=x, max_abs_diff=float("inf"), min_top1_agreement=0.9)
    delegated = int8.details["delegated_ops"]
    assert delegated.get("quantize_per_tensor", 0) >= 2 and delegated.get("dequantize_per_channel", 0) >= 3, "weights per channel, activations quantized"
    assert delegated.get("convolution") == 2 and delegated.get("linear") == 1, "the compute inside the XNNPACK delegate"
    assert not {"convolution", "linear"} & set(int8.details["portable_ops"])
    assert "quantize_per_tensor" not in fp32.details["delegated_ops"]
    assert (tmp_path / "int8.pte").stat().st_size < 0.6 * (tmp_path / "fp32.pte").stat().st_size, "INT8 weights"


def test_pt2e_int8_keeps_what_follows_the_last_convolution_in_fp32():
    """A detector's decoding (points, softplus, the concatenation of pixels and logits) stays FP32 in
    the ExecuTorch INT8 graph, as in the onnxruntime one; a classifier has nothing beyond its last
    compute layer, so its INT8 graph is what XNNPACK's quantizer makes of it."""
    from exporters.executorch import beyond_compute, quantize_pt2e
    from pipeline.models.detector import tiny_det

    torch.manual_seed(0)
    detector, x = tiny_det(width=0.25).eval(), torch.randn(8, 1, 32, 32)
    graph = torch.export.export(detector, (x[:1],)).module()
    assert {"softplus", "cat", "permute"} <= {n.target.__name__.split(".")[0] for n in beyond_compute(graph.graph)}
    assert not {n.target.__name__.split(".")[0] for n in beyond_compute(graph.graph)} & {"conv2d", "linear"}
    quantized = quantize_pt2e(graph, x)
    output = next(n for n in quantized.graph.nodes if n.op == "output").args[0][0]
    assert output.target.__name__.startswith("cat"), f"the output is made by {output.target}: the decoding was quantized"
    tail = [n for n in quantized.graph.nodes if n.op == "call_function"][-10:]
    assert not any("quantize" in n.target.__name__ for n in tail)
    assert any("quantize_per_tensor" in str(n.target) for n in quantized.graph.nodes), "the convolutions are still INT8"
    classifier = torch.export.export(small(), (x[:1, :, :12, :12],)).module()
    assert beyond_compute(classifier.graph) == []


def test_openvino_runs_a_qdq_file_with_int8_convolutions(tmp_path):
    import openvino as ov

    module, x = small(), torch.randn(64, 1, 12, 12)
    export_onnx(module, tmp_path / "m.onnx", x)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": x.numpy()}])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), Reader(), weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    qdq = open_runner(tmp_path / "q.onnx")(x.numpy())
    export_openvino(tmp_path / "q.onnx", tmp_path / "q.xml", x.numpy(), qdq, max_abs_diff=float("inf"), min_top1_agreement=0.9)
    compiled = ov.Core().compile_model(str(tmp_path / "q.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    precisions = {op.get_rt_info()["runtimePrecision"].astype(str) for op in compiled.get_runtime_model().get_ops() if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    assert precisions and precisions <= {"u8", "i8"}, f"convolutions run in {precisions}"


SIGNAL_AFTER_OPENVINO = """
import subprocess, sys
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from devices.on_device.runtimes import open_runner

for _ in DataLoader(list(range(8)), batch_size=4, num_workers=1):  # leaves torch's SIGCHLD handler, as streamed data does
    pass
first, second = open_runner(sys.argv[1], "openvino"), open_runner(sys.argv[1], "openvino")
x = np.zeros((1, 1, 12, 12), np.float32)
first(x), second(x)
del first
del second  # released in the order they were made, as validate's runners may be
subprocess.run([sys.executable, "-c", "pass"], check=True)  # its exit signals this process: SIGCHLD, handled in Python
print("alive")
"""


def test_openvino_leaves_the_process_able_to_take_signals(tmp_path):
    """OpenVINO's CPU plugin swaps the main thread's signal stack per Core; released out of order, two
    Cores left it pointing at freed memory and the next handled signal killed the process (SIGSEGV)."""
    import subprocess
    import sys

    export_onnx(small(), tmp_path / "m.onnx", torch.randn(2, 1, 12, 12))
    script = tmp_path / "signals.py"
    script.write_text(SIGNAL_AFTER_OPENVINO)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip().endswith("alive"), (done.returncode, done.stderr[-2000:])
