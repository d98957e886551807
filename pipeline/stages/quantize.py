"""`quantize`: INT8 by one of the quantization routes (back end × method), each result checked the way it will run.

Methods: `static` (calibrated post-training), `dynamic` (INT8 Linear weights, no calibration),
`accuracy_aware` (the fewest FP32 fallbacks that keep a validation-accuracy budget, scored on the
exported ONNX file in onnxruntime) and `qat` (quantization-aware fine-tuning, optionally distilled
from the float model). Back ends: `onnxruntime` quantizes the exported FP32 file (or, for qat, exports
the torch.ao-converted model); `neural-compressor` goes through its pt2e path and `autotune`. Each
route is a `Route` in `pipeline/quantization/` (what it takes, how it builds); the config is checked
against them and the stage runs the chosen one.

Whatever the route, the INT8 file must agree with the FP32 file on real test samples, and the
compute ops that run in INT8 after onnxruntime's own optimisation are counted: a QDQ file always
*looks* quantized, and a graph that keeps most compute in FP32 is usually slower than FP32 (warned).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporters import onnx_logits, set_metadata
from pipeline.core import extras
from pipeline.core.errors import StageError
from pipeline.core.checkpoints import width_model
from pipeline.core.state import ModelState, artifact_kind, artifact_runtime, artifact_width, runtime_artifact, width_artifact
from pipeline.quantization import int8_checks, ort_backend
from pipeline.quantization import route as routes
from pipeline.quantization.qat import QATConfig
from pipeline.quantization.runtime_int8 import has_int8, int8_name, runtime_int8_file
from pipeline.runtime.runtime_exports import int8_path
from pipeline.runtime.onnx_files import optimized_nodes
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.evaluation import size_figures

Calibration = Literal[routes.calibrations()]
Method = Literal[routes.methods()]
Backend = Literal[routes.backends()]
QAT_PARITY_SAMPLES = 256  # test samples the QAT export's own parity check (converted torch model vs its ONNX file) runs on


class QuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Method = "static"
    backend: Backend = "onnxruntime"
    calibration: Calibration = Field("minmax", description="how activation ranges are set from the calibration samples")
    calibration_samples: int = Field(512, ge=32, description="training samples used to calibrate activation ranges")
    per_channel: bool = Field(True, description="one weight scale per output channel (per-tensor loses accuracy on narrow layers)")
    reduce_range: bool = Field(
        True, description="7-bit weights. The INT8 kernels of x86 CPUs without VNNI (AVX2 only: AMD Zen 2 and 3, Intel before "
        "Ice Lake) add pairs of 8-bit products in 16 bits, which overflows with full-range weights and corrupts answers (seen: "
        "INT8 agreeing with FP32 on 47 % of samples); 7-bit weights cannot overflow. false: full 8-bit weights, for files that "
        "only ever run on Arm or VNNI x86 (slightly more accurate there)",
    )
    format: Literal["qdq", "qoperator"] = Field("qdq", description="QDQ (onnxruntime fuses it into INT8 kernels) or QOperator (QLinearConv in the file)")
    activations: Literal["asymmetric", "symmetric"] = Field(
        "asymmetric", description="asymmetric U8 (fuses with ReLU; fastest on x86) or symmetric S8"
    )
    max_accuracy_drop: float = Field(1.0, ge=0, description="accuracy_aware: points the INT8 model may lose vs FP32 on the validation split")
    calibrations: list[Calibration] | None = Field(
        None, description="accuracy_aware: calibration methods to try; default: every one the back end has, `calibration` first"
    )
    max_fp32_nodes: int | None = Field(None, ge=1, description="accuracy_aware: most compute nodes that may stay FP32; default: no limit")
    qat: QATConfig = Field(default_factory=QATConfig, description="method qat: fine-tuning settings")
    parity_samples: int = Field(1000, ge=8, description="test samples on which INT8 must agree with FP32")
    min_top1_agreement: float = Field(0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _backend_supports(self) -> "QuantizeConfig":
        chosen = self.route()
        for calibration in [self.calibration, *(self.calibrations or [])]:
            if calibration not in chosen.calibrations:
                raise ValueError(f"calibration {calibration!r} is not available with backend {self.backend!r}; it supports: {', '.join(chosen.calibrations)}")
        if self.format not in chosen.formats:
            raise ValueError(f"format {self.format!r} is not available with backend {self.backend!r}; it exports {', '.join(f.upper() for f in chosen.formats)} only")
        return self

    def route(self) -> routes.Route:
        return routes.route_for(self.backend, self.method)

    def calibrations_to_try(self) -> list[str]:
        if self.calibrations is not None:
            return list(dict.fromkeys(self.calibrations))
        return list(dict.fromkeys([self.calibration, *self.route().calibrations]))

    def settings(self) -> ort_backend.StaticSettings:
        return ort_backend.StaticSettings(self.calibration, self.per_channel, self.format, self.activations, self.reduce_range)


def width_route_problem(cfg: QuantizeConfig) -> str | None:
    """Why this route cannot quantize each nested width's file, or None when it can."""
    if cfg.route().quantizes_file:
        return None
    able = [r for r in routes.ROUTES.values() if r.quantizes_file]
    backends = " or ".join(dict.fromkeys(r.backend for r in able))
    return (f"{cfg.backend} {cfg.method} quantizes the torch model (the full width), not each nested width's file: "
            f"after nested, use backend {backends} with method {', '.join(r.method for r in able[:-1])} or {able[-1].method}")


def check_quantize(cfg: QuantizeConfig, earlier: Earlier) -> list[str]:
    """Before anything trains: the route's back end is installed, and it can quantize each nested width's file."""
    problem = width_route_problem(cfg) if "widths" in earlier.capabilities else None
    needed = cfg.route().extra
    return ([problem] if problem else []) + (extras.missing(needed, f"quantize.backend {cfg.backend}") if needed else [])


@stage("quantize", QuantizeConfig, requires=("onnx_fp32",), provides=("onnx_int8",), trains=lambda cfg: cfg.route().trains, check=check_quantize,
       tasks=("classification", "detection"))
def run(cfg: QuantizeConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Make `model.int8.onnx` by the chosen method, then check agreement, INT8 coverage and accuracy."""
    if cfg.route().trains and ctx.task.name != "classification":
        raise StageError(f"quantize.method {cfg.method} trains with class labels, which a {ctx.task.name} model does not return; "
                         "use method static or accuracy_aware")
    if cfg.route().calibrated and cfg.calibration_samples > len(ctx.data.train):
        raise StageError(
            f"quantize.calibration_samples: {cfg.calibration_samples} asked, the training split has only {len(ctx.data.train)}"
        )
    widths = [name for name in state.artifacts if artifact_kind(name) == "onnx_fp32" and artifact_width(name) < 1]
    if widths and width_route_problem(cfg):
        raise StageError(f"quantize: {width_route_problem(cfg)} ({', '.join(widths)})")
    samples = ctx.data.train.take(cfg.calibration_samples)[0].numpy()
    out, ref = ctx.artifact("model.int8.onnx")
    figures = quantize_file(cfg, state, ctx, ctx.resolve(state.artifacts["onnx_fp32"]), out, samples)
    ctx.metrics.update(method=cfg.method, backend=cfg.backend, **figures, **{**size_figures(state.model, ctx.data.input_shape), "size_bytes": out.stat().st_size})
    state.artifacts["onnx_int8"] = ref
    rows = []
    for name in widths:
        width = artifact_width(name)
        out, ref = ctx.artifact(f"model-w{width:g}.int8.onnx")
        figures = quantize_file(cfg, state, ctx, ctx.resolve(state.artifacts[name]), out, samples)
        rows.append({"width": width, "file": ref, "size_bytes": out.stat().st_size, **{k: figures[k] for k in ("accuracy", "top1_agreement_with_fp32", "int8_coverage")}})
        state.artifacts[width_artifact("onnx_int8", width)] = ref
    if rows:
        ctx.metrics["widths"] = rows
    runtime_files = [n for n in state.artifacts if artifact_kind(n).endswith("_fp32") and artifact_runtime(n) != "onnxruntime"]
    if runtime_files:
        ctx.metrics["runtimes"] = runtime_twins(cfg, state, ctx, runtime_files, torch.from_numpy(samples))
    return state


def runtime_twins(cfg: QuantizeConfig, state: ModelState, ctx: StageContext, fp32_names: list[str], samples: torch.Tensor) -> dict:
    """The INT8 twin of each other runtime's FP32 file `export` built, where the runtime has an INT8
    path (`quantization/runtime_int8.py`), with its accuracy measured in that runtime."""
    rows = {}
    parity_inputs = ctx.data.test.take(cfg.parity_samples)[0]
    for name in fp32_names:
        runtime, width = artifact_runtime(name), artifact_width(name)
        if not has_int8(runtime, cfg.format == "qdq", ctx.log):
            continue
        out, ref = ctx.artifact(int8_name(width, runtime))
        qdq_file = ctx.resolve(state.artifacts[width_artifact("onnx_int8", width)])
        module = width_model(state.model, state.widths, width, ctx.resolve)
        metadata = {p.key: p.value for p in onnx.load(str(qdq_file)).metadata_props}
        ctx.log.info(f"quantize {runtime}: writing {ref} ({int8_path(runtime)}), then its checks …")
        figures = runtime_int8_file(runtime, module, ctx.resolve(state.artifacts[name]), qdq_file, out, samples, parity_inputs, cfg.min_top1_agreement, metadata)
        int8 = runtime_artifact(runtime, "int8", width)
        state.artifacts[int8] = ref
        rows[int8] = {"file": ref, "accuracy": round(ctx.score(out, "test"), 5), **figures}
        ctx.log.info(f"quantize {runtime}: {ref}, agreement with FP32 {figures['top1_agreement_with_fp32']:.4f}, accuracy {rows[int8]['accuracy']:.4f}")
    return rows


def quantize_file(cfg: QuantizeConfig, state: ModelState, ctx: StageContext, fp32: Path, out: Path, samples: np.ndarray) -> dict:
    """`out`: the INT8 file of `fp32` by the configured route, refused unless it agrees with FP32; its figures."""
    chosen = cfg.route()
    job = routes.Job(
        model=state.model, fp32=fp32, out=out, samples=samples, settings=cfg.settings(), calibrations=tuple(cfg.calibrations_to_try()),
        max_accuracy_drop=cfg.max_accuracy_drop, max_fp32_nodes=cfg.max_fp32_nodes, qat=cfg.qat,
        parity_inputs=ctx.data.test.take(QAT_PARITY_SAMPLES)[0],
    )
    description, details = chosen.build(job, ctx)
    metadata = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    set_metadata(out, {**metadata, "quantization": description})
    x = ctx.data.test.take(cfg.parity_samples)[0].numpy()
    agreement = int8_checks.check_agreement(
        out, onnx_logits(fp32, x), onnx_logits(out, x), cfg.min_top1_agreement, f"its FP32 file {fp32.name}",
        "Try method: accuracy_aware or qat, calibration: entropy or percentile, more calibration_samples, or per_channel: true",
    )
    coverage = int8_checks.coverage(optimized_nodes(out))
    warning, note = int8_checks.coverage_note(coverage, chosen.coverage_hint)
    if note:
        (ctx.log.warning if warning else ctx.log.info)(f"quantize: {note}")
    return {
        "quantization": description,
        "accuracy": round(ctx.score(out, "test"), 5),
        "top1_agreement_with_fp32": agreement,
        "int8_coverage": coverage,
        **details,
    }
