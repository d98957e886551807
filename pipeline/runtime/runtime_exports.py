"""The other runtimes' files of a model, made from the PyTorch module and its checked ONNX file.

What a runtime is lives in two descriptors, read here and nowhere spelled out again: its runner
class (`devices.on_device.runtimes.RUNNERS`: package, file suffix) and its exporter
(`exporters.EXPORTERS`: how the file and its INT8 twin are made). `export` (FP32) and `quantize`
(INT8 where the runtime has a real path) both go through `export_for_runtime`. Every file comes out
of its exporter parity-checked in its own runtime; a missing package or an operator a runtime cannot
take becomes a `StageError` naming the runtime, the stage and the fix.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from devices.on_device.runtimes import RUNNERS, RuntimeMissing
from exporters import EXPORTERS
from exporters.parity import ExportResult, ExportUnsupported
from pipeline.core import extras
from pipeline.core.errors import StageError


def missing_runtimes(runtimes: list[str]) -> list[str]:
    """One sentence per asked-for runtime whose package is not installed, naming the pip command."""
    return [problem for r in runtimes if r != extras.CORE_RUNTIME for problem in extras.missing(r, f"runtime {r}")]


def file_name(stem: str, runtime: str) -> str:
    """model.onnx, model-w0.5.ncnn.param, …"""
    return stem + EXPORTERS[runtime].name_mark + RUNNERS[runtime].suffix


def int8_path(runtime: str) -> str:
    """How the runtime's INT8 file is made ("" when it has none)."""
    return EXPORTERS[runtime].int8


def no_int8_reason(runtime: str) -> str:
    return EXPORTERS[runtime].no_int8


def int8_from_qdq(runtime: str) -> bool:
    """Its INT8 file is read from the quantize route's QDQ ONNX file."""
    return EXPORTERS[runtime].int8_from_qdq


def export_for_runtime(
    runtime: str, module: nn.Module, onnx_file: Path, path: Path, parity_inputs: torch.Tensor, metadata: dict[str, str],
    stage: str, *, int8_calibration: torch.Tensor | None = None, max_abs_diff: float = 1e-3, min_top1_agreement: float = 0.99,
) -> ExportResult:
    """`path` for `runtime`, parity-checked in that runtime: FP32, or INT8 when `int8_calibration` is
    given (the exporter's `RuntimeExporter` says from what)."""
    exporter = EXPORTERS.get(runtime)
    if exporter is None or exporter.export is None:
        raise StageError(f"{stage}: no exporter for runtime {runtime}")
    try:
        return exporter.make(module, onnx_file, path, parity_inputs, metadata, int8_calibration=int8_calibration,
                             max_abs_diff=max_abs_diff, min_top1_agreement=min_top1_agreement)
    except RuntimeMissing as e:
        raise StageError(f"{stage}: {e}") from None
    except ExportUnsupported as e:
        raise StageError(f"{stage} ({runtime}): {e}") from e
