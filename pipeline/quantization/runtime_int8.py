"""INT8 files for the runtimes beside ONNX Runtime, made where the runtime has a real INT8 path.

- ExecuTorch: PT2E with its XNNPACK quantizer (per-channel symmetric weights), calibrated on the same
  samples as the ONNX Runtime file, lowered to XNNPACK's INT8 kernels.
- OpenVINO: the QDQ ONNX file the quantize stage made, read by OpenVINO, which runs each Q/DQ-wrapped
  convolution as an INT8 convolution (so its accuracy is the QDQ file's calibration, in OpenVINO).
- ncnn: none from the pip packages (its `RuntimeExporter.no_int8` says why); its FP32 file stays the
  only one, and the stage's log says so.

Each file is parity-checked in its runtime by its exporter, then must agree with the same runtime's
FP32 file on the stage's parity samples (the rule ONNX Runtime's INT8 file meets), or it is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from devices.on_device.runtimes import model_files, open_runner
from pipeline.quantization import int8_checks
from pipeline.runtime.runtime_exports import export_for_runtime, file_name, int8_from_qdq, int8_path, no_int8_reason


def runtime_int8_file(
    runtime: str, module: nn.Module, fp32_file: Path, qdq_file: Path, out: Path, calibration: torch.Tensor, parity_inputs: torch.Tensor,
    min_top1_agreement: float, metadata: dict[str, str],
) -> dict:
    """`out`: the runtime's INT8 twin of `fp32_file`; its figures (agreement with FP32, size)."""
    export_for_runtime(
        runtime, module, qdq_file, out, parity_inputs, metadata, "quantize", int8_calibration=calibration,
        max_abs_diff=float("inf"), min_top1_agreement=min_top1_agreement,  # INT8 vs its own reference: the class must agree, logits move by a quantisation step
    )
    x = np.ascontiguousarray(parity_inputs.numpy(), dtype=np.float32)
    agreement = int8_checks.check_agreement(
        out, open_runner(fp32_file)(x)[0], open_runner(out)(x)[0], min_top1_agreement, f"the {runtime} FP32 file {fp32_file.name}",
        f"Try more calibration_samples, or leave {runtime} out of export.runtimes",
    )
    return {"top1_agreement_with_fp32": agreement, "size_bytes": sum(f.stat().st_size for f in model_files(out)), "int8_path": int8_path(runtime)}


def has_int8(runtime: str, onnx_int8_is_qdq: bool, log: logging.Logger) -> bool:
    """Whether the runtime gets an INT8 twin: it has an INT8 path, and the one it reads exists
    (OpenVINO reads the QDQ ONNX file, which a QOperator route does not write); the log says why not."""
    if not int8_path(runtime):
        log.info(f"quantize: no INT8 file for {runtime}: {no_int8_reason(runtime)}")
        return False
    if int8_from_qdq(runtime) and not onnx_int8_is_qdq:
        log.info(f"quantize: no INT8 file for {runtime}: it is read from a QDQ ONNX file, and format is qoperator")
        return False
    return True


def int8_name(width: float, runtime: str) -> str:
    """model.int8.pte, model-w0.5.int8.xml, …: the runtime's file name with `.int8` before its suffix."""
    return file_name(("model" if width == 1 else f"model-w{width:g}") + ".int8", runtime)
