"""`quantize`: INT8 by one of four methods and two back ends, each result checked the way it will run.

Methods: `static` (calibrated post-training), `dynamic` (INT8 Linear weights, no calibration),
`accuracy_aware` (the fewest FP32 fallbacks that keep a validation-accuracy budget, scored on the
exported ONNX file in onnxruntime) and `qat` (quantization-aware fine-tuning, optionally distilled
from the float model). Back ends: `onnxruntime` quantizes the exported FP32 file (or, for qat, exports
the torch.ao-converted model); `neural-compressor` goes through its pt2e path and `autotune`.

Whatever the route, the INT8 file must agree with the FP32 file on real test samples, and the
compute ops that run in INT8 after onnxruntime's own optimisation are counted: a QDQ file always
*looks* quantized, and a graph that keeps most compute in FP32 is usually slower than FP32 (warned).

Over 250 lines on purpose: each route is a dozen lines that glue the stage's config and folder to a
back end in `pipeline/quantization/`, and the `ROUTES` table reads best with all six beside it.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporters import onnx_logits, set_metadata
from pipeline.core.errors import StageError
from pipeline.core.state import ModelState, artifact_kind, artifact_runtime, artifact_width, width_artifact
from pipeline.quantization import accuracy_aware, inc_backend, int8_checks, ort_backend, qat
from pipeline.quantization.qat import QATConfig
from pipeline.quantization.runtime_int8 import runtime_int8_files
from pipeline.runtime.onnx_files import onnx_accuracy, optimized_nodes
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.evaluation import size_figures

Calibration = Literal["minmax", "entropy", "percentile"]
METHODS = {
    "onnxruntime": ("static", "dynamic", "accuracy_aware", "qat"),
    "neural-compressor": ("static", "accuracy_aware"),
}
CALIBRATIONS = {"onnxruntime": ("minmax", "entropy", "percentile"), "neural-compressor": ("minmax", "entropy")}


class QuantizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["static", "dynamic", "accuracy_aware", "qat"] = "static"
    backend: Literal["onnxruntime", "neural-compressor"] = "onnxruntime"
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
        if self.method not in METHODS[self.backend]:
            raise ValueError(
                f"method {self.method!r} is not available with backend {self.backend!r}; "
                f"it supports: {', '.join(METHODS[self.backend])}"
            )
        for calibration in [self.calibration, *(self.calibrations or [])]:
            if calibration not in CALIBRATIONS[self.backend]:
                raise ValueError(f"calibration {calibration!r} is not available with backend {self.backend!r}; it supports: {', '.join(CALIBRATIONS[self.backend])}")
        if self.backend == "neural-compressor" and self.format != "qdq":
            raise ValueError("format 'qoperator' is not available with backend 'neural-compressor'; it exports QDQ only")
        return self

    def calibrations_to_try(self) -> list[str]:
        if self.calibrations is not None:
            return list(dict.fromkeys(self.calibrations))
        return list(dict.fromkeys([self.calibration, *CALIBRATIONS[self.backend]]))

    def settings(self) -> ort_backend.StaticSettings:
        return ort_backend.StaticSettings(self.calibration, self.per_channel, self.format, self.activations, self.reduce_range)


WIDTH_ROUTES = {("onnxruntime", "static"), ("onnxruntime", "dynamic"), ("onnxruntime", "accuracy_aware")}  # they quantize an ONNX file


def width_route_problem(cfg: QuantizeConfig) -> str | None:
    """Why this route cannot quantize each nested width's file, or None when it can."""
    if (cfg.backend, cfg.method) in WIDTH_ROUTES:
        return None
    return (f"{cfg.backend} {cfg.method} quantizes the torch model (the full width), not each nested width's file: "
            "after nested, use backend onnxruntime with method static, dynamic or accuracy_aware")


def routes_for_widths(cfg: QuantizeConfig, earlier: Earlier) -> list[str]:
    problem = width_route_problem(cfg) if "widths" in earlier.capabilities else None
    return [problem] if problem else []


@stage("quantize", QuantizeConfig, requires=("onnx_fp32",), provides=("onnx_int8",), trains=lambda cfg: cfg.method == "qat", check=routes_for_widths)
def run(cfg: QuantizeConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Make `model.int8.onnx` by the chosen method, then check agreement, INT8 coverage and accuracy."""
    if cfg.method != "dynamic" and cfg.calibration_samples > len(ctx.data.train):
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
        ctx.metrics["runtimes"] = runtime_int8_files(state, ctx, runtime_files, torch.from_numpy(samples), cfg.parity_samples, cfg.min_top1_agreement, cfg.format == "qdq")
    return state


def quantize_file(cfg: QuantizeConfig, state: ModelState, ctx: StageContext, fp32: Path, out: Path, samples: np.ndarray) -> dict:
    """`out`: the INT8 file of `fp32` by the configured route, refused unless it agrees with FP32; its figures."""
    description, details = ROUTES[(cfg.backend, cfg.method)](cfg, state, ctx, fp32, out, samples)
    metadata = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    set_metadata(out, {**metadata, "quantization": description})
    x = ctx.data.test.take(cfg.parity_samples)[0].numpy()
    agreement = int8_checks.check_agreement(
        out, onnx_logits(fp32, x), onnx_logits(out, x), cfg.min_top1_agreement, f"its FP32 file {fp32.name}",
        "Try method: accuracy_aware or qat, calibration: entropy or percentile, more calibration_samples, or per_channel: true",
    )
    coverage = int8_checks.coverage(optimized_nodes(out))
    hint = " (dynamic quantizes Linear layers only; for a conv model use method static)" if cfg.method == "dynamic" else ""
    warning, note = int8_checks.coverage_note(coverage, hint)
    if note:
        (ctx.log.warning if warning else ctx.log.info)(f"quantize: {note}")
    return {
        "quantization": description,
        "accuracy": round(onnx_accuracy(out, ctx.data.test, metric=ctx.metric), 5),
        "top1_agreement_with_fp32": agreement,
        "int8_coverage": coverage,
        **details,
    }


def ort_static(cfg, state, ctx, fp32: Path, out: Path, samples: np.ndarray):
    prepared = ort_backend.prepare(fp32, ctx.stage_dir / "model.prepared.onnx")
    with ctx.progress(None, total=len(samples), desc="calibrate") as bar:
        ort_backend.quantize_static_file(prepared, out, samples, cfg.settings(), tick=bar.update)
    prepared.unlink()
    return f"int8 static {cfg.settings().describe()} on {len(samples)} samples", {}


def ort_dynamic(cfg, state, ctx, fp32: Path, out: Path, samples: np.ndarray):
    prepared = ort_backend.prepare(fp32, ctx.stage_dir / "model.prepared.onnx")
    ort_backend.quantize_dynamic_file(prepared, out, cfg.per_channel, cfg.reduce_range)
    prepared.unlink()
    return f"int8 dynamic: Linear layers with {'per-channel' if cfg.per_channel else 'per-tensor'} S8 weights, activations quantized at run time", {}


def ort_accuracy_aware(cfg, state, ctx, fp32: Path, out: Path, samples: np.ndarray):
    """Search calibrations, then FP32 fallbacks, each candidate scored on the validation split in onnxruntime."""
    prepared = ort_backend.prepare(fp32, ctx.stage_dir / "model.prepared.onnx")
    trials_dir = ctx.stage_dir / "trials"
    trials_dir.mkdir(exist_ok=True)
    built = iter(range(10**6))

    def build(calibration: str, excluded: tuple[str, ...]) -> Path:
        path = trials_dir / f"trial_{next(built)}.onnx"
        return ort_backend.quantize_static_file(prepared, path, samples, replace(cfg.settings(), calibration=calibration), excluded)

    reference = onnx_accuracy(fp32, ctx.data.val, metric=ctx.metric)
    result = accuracy_aware.search(
        build,
        lambda path: onnx_accuracy(path, ctx.data.val, metric=ctx.metric),
        cfg.calibrations_to_try(),
        ort_backend.compute_nodes(prepared),
        reference,
        cfg.max_accuracy_drop,
        cfg.max_fp32_nodes,
        log=ctx.log.info,
    )
    shutil.copyfile(result.best.path, out)
    shutil.rmtree(trials_dir)
    prepared.unlink()
    report_budget(result.budget_met, result.best.row(reference)["drop_points"], cfg, ctx)
    settings = replace(cfg.settings(), calibration=result.best.calibration)
    fallbacks = f", {len(result.best.excluded)} node(s) left FP32" if result.best.excluded else ""
    return f"int8 accuracy-aware {settings.describe()}{fallbacks}", {"accuracy_aware": result.summary()}


def report_budget(met: bool, drop: float, cfg: QuantizeConfig, ctx: StageContext) -> None:
    if met:
        ctx.log.info(f"quantize accuracy_aware: drop {drop:.2f} points, within the {cfg.max_accuracy_drop} budget")
    else:
        ctx.log.warning(
            f"quantize accuracy_aware: no candidate met the {cfg.max_accuracy_drop}-point budget; keeping the most accurate "
            f"(drop {drop:.2f} points). Try method qat, a larger max_fp32_nodes, or a looser budget."
        )


def ort_qat(cfg, state, ctx, fp32: Path, out: Path, samples: np.ndarray):
    """Fake-quantized fine-tuning, then the converted model exported with its learned ranges."""
    model = qat.prepare(state.model, ctx.data.input_shape, torch.from_numpy(samples))
    history = qat.finetune(model, state.model, cfg.qat, ctx)
    exported = qat.export_int8(model, out, ctx.data.test.take(256)[0])  # run() stamps the FP32 file's metadata on it
    teacher = "distilled from the float model" if cfg.qat.distill else "labels only"
    return (
        f"int8 QAT (torch.ao FX, x86 qconfig: per-channel S8 weights, U8 activations), {cfg.qat.train.epochs} epochs, {teacher}",
        {"qat": {"history": history, "export_parity": exported.to_json() | {"path": out.name}}},
    )


def inc_static(cfg, state, ctx, fp32: Path, out: Path, samples: np.ndarray):
    config = inc_backend.static_config(cfg.calibration, cfg.per_channel, cfg.activations)
    graph = inc_backend.exported(state.model, ctx.data.input_shape)
    with ctx.progress(None, total=len(samples), desc="calibrate") as bar:
        quantized = inc_backend.quantize(graph, config, inc_backend.calibrate(samples, bar.update))
    inc_backend.export_folded(quantized, ctx.data.input_shape, out)
    return f"int8 {inc_backend.describe(config)} on {len(samples)} samples", {}


def inc_accuracy_aware(cfg, state, ctx, fp32: Path, out: Path, samples: np.ndarray):
    """neural-compressor's autotune over calibrations (asymmetric activations first: they fuse with
    ReLU in onnxruntime), each trial scored on its exported ONNX file on the validation split."""
    other = "symmetric" if cfg.activations == "asymmetric" else "asymmetric"
    configs = [
        inc_backend.static_config(calibration, cfg.per_channel, activations)
        for activations in (cfg.activations, other)
        for calibration in cfg.calibrations_to_try()
    ]
    reference = onnx_accuracy(fp32, ctx.data.val, metric=ctx.metric)
    graph = inc_backend.exported(state.model, ctx.data.input_shape)
    tuned, trials, chosen, met = inc_backend.autotune(
        graph,
        configs,
        inc_backend.calibrate(samples),
        ctx.data.input_shape,
        lambda path: onnx_accuracy(path, ctx.data.val, metric=ctx.metric),
        reference,
        cfg.max_accuracy_drop,
    )
    for row in trials:
        ctx.log.info(f"neural-compressor autotune: {row['config']}: val acc {row['val_accuracy']:.4f} (drop {row['drop_points']:.2f})")
    inc_backend.export_folded(tuned, ctx.data.input_shape, out)
    report_budget(met, trials[chosen]["drop_points"], cfg, ctx)
    summary = {
        "budget_points": cfg.max_accuracy_drop,
        "budget_met": met,
        "fp32_val_accuracy": round(reference, 5),
        "chosen": trials[chosen],
        "fp32_nodes": [],
        "trials": trials,
        "note": "neural-compressor's torch back end without IPEX tunes global settings only; no per-node FP32 fallback",
    }
    return f"int8 {trials[chosen]['config']} on {len(samples)} samples, chosen by autotune", {"accuracy_aware": summary}


ROUTES = {
    ("onnxruntime", "static"): ort_static,
    ("onnxruntime", "dynamic"): ort_dynamic,
    ("onnxruntime", "accuracy_aware"): ort_accuracy_aware,
    ("onnxruntime", "qat"): ort_qat,
    ("neural-compressor", "static"): inc_static,
    ("neural-compressor", "accuracy_aware"): inc_accuracy_aware,
}
