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
import onnx
import torch
from torch import nn

from devices.on_device.runtimes import model_files, open_runner
from pipeline.core.checkpoints import width_model
from pipeline.core.state import ModelState, artifact_runtime, artifact_width, runtime_artifact, width_artifact
from pipeline.quantization import int8_checks
from pipeline.runtime.onnx_files import file_accuracy
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


def has_int8(runtime: str, log: logging.Logger) -> bool:
    if not int8_path(runtime):
        log.info(f"quantize: no INT8 file for {runtime}: {no_int8_reason(runtime)}")
        return False
    return True


def runtime_int8_files(state: ModelState, ctx, fp32_names: list[str], samples: torch.Tensor, parity_samples: int, min_top1_agreement: float, onnx_int8_is_qdq: bool) -> dict:
    """The INT8 twin of each other runtime's FP32 file `export` built, where the runtime has an INT8 path
    (above), with its accuracy measured in that runtime. `ctx` is the quantize stage's context;
    `onnx_int8_is_qdq`: its ONNX INT8 file is QDQ (the format OpenVINO's INT8 is read from)."""
    rows = {}
    parity_inputs = ctx.data.test.take(parity_samples)[0]
    for name in fp32_names:
        runtime, width = artifact_runtime(name), artifact_width(name)
        if not has_int8(runtime, ctx.log) or (int8_from_qdq(runtime) and not onnx_int8_is_qdq):
            continue
        fp32 = ctx.resolve(state.artifacts[name])
        out, ref = ctx.artifact(int8_name(width, runtime))
        qdq_file = ctx.resolve(state.artifacts[width_artifact("onnx_int8", width)])
        module = width_model(state.model, state.widths, width, ctx.resolve)
        metadata = {p.key: p.value for p in onnx.load(str(qdq_file)).metadata_props}
        with ctx.progress(None, total=None, desc=f"quantize {runtime}"):
            figures = runtime_int8_file(runtime, module, fp32, qdq_file, out, samples, parity_inputs, min_top1_agreement, metadata)
        int8 = runtime_artifact(runtime, "int8", width)
        state.artifacts[int8] = ref
        rows[int8] = {"file": ref, "accuracy": round(file_accuracy(out, ctx.data.test, metric=ctx.metric), 5), **figures}
        ctx.log.info(f"quantize {runtime}: {ref}, agreement with FP32 {figures['top1_agreement_with_fp32']:.4f}, accuracy {rows[int8]['accuracy']:.4f}")
    return rows


def int8_name(width: float, runtime: str) -> str:
    """model.int8.pte, model-w0.5.int8.xml, …: the runtime's file name with `.int8` before its suffix."""
    return file_name(("model" if width == 1 else f"model-w{width:g}") + ".int8", runtime)
