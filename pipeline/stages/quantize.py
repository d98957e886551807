"""`quantize`: static post-training INT8 with onnxruntime's quantizer (QDQ, per-channel S8 weights, U8 activations).

Works on the exported FP32 file, so what is calibrated is exactly what ships. `quant_pre_process`
(shape inference + graph clean-up) runs first: without it onnxruntime leaves ops between Q/DQ pairs
in float. The result is checked the way it will run: INT8 op coverage in onnxruntime's optimised
graph, and top-1 agreement with the FP32 file on real test samples.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from pydantic import BaseModel, ConfigDict, Field

from exporters import ParityError, onnx_logits, set_metadata
from pipeline.errors import StageError
from pipeline.evaluation import size_figures
from pipeline.onnx_runtime import int8_coverage, onnx_accuracy
from pipeline.stages import StageContext, stage
from pipeline.state import ModelState

CALIBRATION = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}


class QuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["static"] = "static"
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calibration_samples: int = Field(512, ge=32, description="training samples used to calibrate activation ranges")
    per_channel: bool = Field(True, description="one weight scale per output channel (per-tensor loses accuracy on narrow layers)")
    parity_samples: int = Field(1000, ge=8, description="test samples on which INT8 must agree with FP32")
    min_top1_agreement: float = Field(0.95, gt=0, le=1)


class CalibrationReader(CalibrationDataReader):
    """Feeds calibration samples in batches of 32 and ticks a progress bar."""

    def __init__(self, input_name: str, samples: np.ndarray, bar):
        self.input_name, self.samples, self.bar, self.position = input_name, samples, bar, 0

    def get_next(self):
        if self.position >= len(self.samples):
            return None
        batch = self.samples[self.position : self.position + 32]
        self.position += len(batch)
        self.bar.update(len(batch))
        return {self.input_name: batch}


@stage("quantize", QuantizeConfig, requires=("onnx_fp32",), provides=("onnx_int8",))
def run(cfg: QuantizeConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Quantize the FP32 ONNX file to INT8 with calibration; checks INT8 coverage and agreement with FP32."""
    if cfg.calibration_samples > len(ctx.data.train):
        raise StageError(
            f"quantize.calibration_samples: {cfg.calibration_samples} asked, the training split has only {len(ctx.data.train)}"
        )
    fp32 = ctx.resolve(state.artifacts["onnx_fp32"])
    prepared, _ = ctx.artifact("model.prepared.onnx")
    out, ref = ctx.artifact("model.int8.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    input_name = onnx.load(str(prepared)).graph.input[0].name
    samples = ctx.data.train.x[: cfg.calibration_samples].numpy()
    with ctx.progress(None, total=len(samples), desc="calibrate") as bar:
        quantize_static(
            str(prepared),
            str(out),
            CalibrationReader(input_name, samples, bar),
            quant_format=QuantFormat.QDQ,
            per_channel=cfg.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CALIBRATION[cfg.calibration],
        )
    prepared.unlink()
    metadata = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    metadata["quantization"] = f"int8 static QDQ, {'per-channel' if cfg.per_channel else 'per-tensor'} S8 weights, U8 activations, {cfg.calibration} calibration on {len(samples)} samples"
    set_metadata(out, metadata)

    x = ctx.data.test.x[: cfg.parity_samples].numpy()
    agreement = float((onnx_logits(fp32, x).argmax(1) == onnx_logits(out, x).argmax(1)).mean())
    if agreement < cfg.min_top1_agreement:
        out.rename(out.with_suffix(".onnx.rejected"))
        raise ParityError(
            f"INT8 model agrees with FP32 on only {agreement:.4f} of {len(x)} test samples (minimum {cfg.min_top1_agreement}); "
            "try calibration: entropy or percentile, more calibration_samples, or per_channel: true"
        )
    coverage = int8_coverage(out)
    if coverage["int8_fraction"] < 0.5:
        ctx.log.warning(
            f"quantize: only {coverage['int8_compute_ops']} of {coverage['int8_compute_ops'] + coverage['fp32_compute_ops']} "
            "compute ops run in INT8 after onnxruntime's optimisation; the rest stay FP32 between Q/DQ pairs"
        )
    ctx.metrics.update(
        accuracy=round(onnx_accuracy(out, ctx.data.test), 5),
        **{**size_figures(state.model, ctx.data.input_shape), "size_bytes": out.stat().st_size},
        top1_agreement_with_fp32=agreement,
        int8_coverage=coverage,
    )
    state.artifacts["onnx_int8"] = ref
    return state
