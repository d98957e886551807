"""INT8 files for the runtimes beside ONNX Runtime, made where the runtime has a real INT8 path.

- ExecuTorch: PT2E with its XNNPACK quantizer (per-channel symmetric weights), calibrated on the same
  samples as the ONNX Runtime file, lowered to XNNPACK's INT8 kernels.
- OpenVINO: the QDQ ONNX file the quantize stage made, read by OpenVINO, which runs each Q/DQ-wrapped
  convolution as an INT8 convolution (so its accuracy is the QDQ file's calibration, in OpenVINO).
- ncnn: none from the pip packages (`runtime_exports.NO_INT8` says why); its FP32 file stays the
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
from exporters.parity import reject
from pipeline.core.errors import StageError
from pipeline.runtime.runtime_exports import INT8_PATHS, NO_INT8, export_for_runtime


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
    agreement = float((open_runner(fp32_file)(x)[0].argmax(1) == open_runner(out)(x)[0].argmax(1)).mean())
    if agreement < min_top1_agreement:
        reject(out)
        raise StageError(
            f"quantize ({runtime}): the INT8 file {out.name} agrees with the {runtime} FP32 file on only {agreement:.4f} of {len(x)} test samples "
            f"(minimum {min_top1_agreement}); it was not shipped. Try more calibration_samples, or leave {runtime} out of export.runtimes"
        )
    return {"top1_agreement_with_fp32": agreement, "size_bytes": sum(f.stat().st_size for f in model_files(out)), "int8_path": INT8_PATHS[runtime]}


def has_int8(runtime: str, log: logging.Logger) -> bool:
    if runtime in NO_INT8:
        log.info(f"quantize: no INT8 file for {runtime}: {NO_INT8[runtime]}")
        return False
    return True
