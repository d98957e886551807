"""OpenVINO export (IR `.xml` + `.bin`, read from the ONNX file) with a parity check run in OpenVINO.

OpenVINO is Intel's runtime for its CPUs and GPUs (the N100 class of edge box). Its model
optimizer reads ONNX directly, so the IR is made from the file the ONNX exporter already checked;
weights stay FP32 (`compress_to_fp16=False`), and the parity run uses f32 inference precision. An
INT8 IR is made the same way from a QDQ ONNX file: OpenVINO turns each Q/DQ pair around a conv into
an INT8 convolution; its parity is judged against that ONNX file in onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devices.on_device.runtimes import open_runner, openvino_core, require
from exporters.onnx import onnx_outputs
from exporters.parity import ExportResult, ExportUnsupported, check_parity, first_line, torch_outputs, write_sidecar
from exporters.runtime_exporter import RuntimeExporter


def export_openvino(
    onnx_file: Path,
    path: Path,
    parity_inputs: np.ndarray,
    expected: list[np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    max_abs_diff: float = 1e-3,
    min_top1_agreement: float = 0.99,
) -> ExportResult:
    """Write `path` (.xml) and its `.bin` from `onnx_file`; run `parity_inputs` in OpenVINO and
    compare with `expected` (PyTorch's outputs for an FP32 file, the QDQ file's for INT8)."""
    ov = require("openvino")
    path = Path(path)
    try:
        model = openvino_core().read_model(str(onnx_file))  # the process's one Core (see runtimes.openvino_core)
    except Exception as e:
        raise ExportUnsupported(f"openvino cannot read {Path(onnx_file).name}: {first_line(e)}") from e
    if metadata:
        for key, value in metadata.items():
            model.set_rt_info(str(value), ["framework", "edge_compress", key])
    ov.save_model(model, str(path), compress_to_fp16=False)
    write_sidecar(path, metadata)
    runner = open_runner(path, "openvino", threads=1)
    return check_parity(expected, runner(np.ascontiguousarray(parity_inputs, dtype=np.float32)), path, "openvino", max_abs_diff, min_top1_agreement)


def export_file(module, onnx_file: Path, path: Path, parity_inputs, metadata: dict[str, str], *, int8_calibration=None, **settings) -> ExportResult:
    """The pipeline's call: the IR is read from `onnx_file`; for INT8 that is the QDQ file, and parity
    is against it in onnxruntime (the calibration is the QDQ file's own)."""
    x = parity_inputs.numpy()
    expected = onnx_outputs(onnx_file, x) if int8_calibration is not None else torch_outputs(module.eval().cpu(), parity_inputs)
    return export_openvino(onnx_file, path, x, expected, metadata, **settings)


EXPORTER = RuntimeExporter(
    "openvino", export_file, int8="OpenVINO reads the quantize stage's QDQ ONNX file and runs its convolutions in INT8", int8_from_qdq=True,
)
