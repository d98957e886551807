"""The other runtimes' files of a model, made from the PyTorch module and its checked ONNX file.

One table says which exporter makes which runtime's file and under what name; `export` (FP32) and
`quantize` (INT8 where the runtime has a real path) both go through `export_for_runtime`, so a
runtime is added in one place. Every file comes out of its exporter parity-checked in its own
runtime; a missing package or an operator a runtime cannot take becomes a `StageError` naming the
runtime, the stage and the fix.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from devices.on_device.runtimes import RuntimeMissing, installed
from exporters.parity import ExportResult, ExportUnsupported, torch_outputs
from pipeline.core.errors import StageError

SUFFIX = {"onnxruntime": ".onnx", "executorch": ".pte", "ncnn": ".ncnn.param", "openvino": ".xml"}
INT8_PATHS = {  # runtime -> how its INT8 file is made (docs and the quantize stage's log say the same)
    "onnxruntime": "the quantize stage's route",
    "executorch": "PT2E with ExecuTorch's XNNPACK quantizer, calibrated on the quantize stage's samples",
    "openvino": "OpenVINO reads the quantize stage's QDQ ONNX file and runs its convolutions in INT8",
}
NO_INT8 = {"ncnn": "the pip packages of ncnn and pnnx ship no INT8 calibration tool (ncnn2table / ncnn2int8 need a source build)"}


def missing_runtimes(runtimes: list[str]) -> list[str]:
    """One sentence per asked-for runtime whose package is not installed, naming the pip command."""
    return [f"runtime {r} is asked for but not installed: pip install -e '.[{r}]' (or pip install {r})" for r in runtimes if not installed(r)]


def file_name(stem: str, runtime: str) -> str:
    return stem + SUFFIX[runtime]


def export_for_runtime(
    runtime: str, module: nn.Module, onnx_file: Path, path: Path, parity_inputs: torch.Tensor, metadata: dict[str, str],
    stage: str, *, int8_calibration: torch.Tensor | None = None, max_abs_diff: float = 1e-3, min_top1_agreement: float = 0.99,
) -> ExportResult:
    """`path` for `runtime`, parity-checked in that runtime. FP32 from the module (OpenVINO from the
    ONNX file); INT8 when `int8_calibration` is given (ExecuTorch: PT2E; OpenVINO: `onnx_file` is
    then the QDQ file and parity is against it in onnxruntime)."""
    try:
        if runtime == "executorch":
            from exporters.executorch import export_executorch

            return export_executorch(module, path, parity_inputs, metadata, int8_calibration=int8_calibration, max_abs_diff=max_abs_diff, min_top1_agreement=min_top1_agreement)
        if runtime == "ncnn":
            from exporters.ncnn import export_ncnn

            return export_ncnn(module, path, parity_inputs, metadata, max_abs_diff=max_abs_diff, min_top1_agreement=min_top1_agreement)
        if runtime == "openvino":
            from exporters import onnx_outputs
            from exporters.openvino import export_openvino

            x = parity_inputs.numpy()
            expected = onnx_outputs(onnx_file, x) if int8_calibration is not None else torch_outputs(module.eval().cpu(), parity_inputs)
            return export_openvino(onnx_file, path, x, expected, metadata, max_abs_diff=max_abs_diff, min_top1_agreement=min_top1_agreement)
    except RuntimeMissing as e:
        raise StageError(f"{stage}: {e}") from None
    except ExportUnsupported as e:
        raise StageError(f"{stage} ({runtime}): {e}") from e
    raise StageError(f"{stage}: no exporter for runtime {runtime}")

