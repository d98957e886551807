"""neural-compressor's two routes, both through its pt2e path on the torch model (so at full width
only): static, and accuracy-aware by its `autotune` with each trial scored on the exported ONNX file."""

from __future__ import annotations

from pipeline.quantization import inc_backend
from pipeline.quantization.route import Job, Route, RouteContext, register, report_budget

CALIBRATIONS = tuple(inc_backend.ACT_ALGO)


def static(job: Job, ctx: RouteContext):
    s = job.settings
    config = inc_backend.static_config(s.calibration, s.per_channel, s.activations)
    graph = inc_backend.exported(job.model, ctx.data.input_shape)
    with ctx.progress(None, total=len(job.samples), desc="calibrate") as bar:
        quantized = inc_backend.quantize(graph, config, inc_backend.calibrate(job.samples, bar.update))
    inc_backend.export_folded(quantized, ctx.data.input_shape, job.out)
    return f"int8 {inc_backend.describe(config)} on {len(job.samples)} samples", {}


def autotune(job: Job, ctx: RouteContext):
    """neural-compressor's autotune over calibrations (asymmetric activations first: they fuse with
    ReLU in onnxruntime), each trial scored on its exported ONNX file on the validation split."""
    s = job.settings
    other = "symmetric" if s.activations == "asymmetric" else "asymmetric"
    configs = [inc_backend.static_config(calibration, s.per_channel, activations) for activations in (s.activations, other) for calibration in job.calibrations]
    reference = ctx.score(job.fp32, "val")
    graph = inc_backend.exported(job.model, ctx.data.input_shape)
    tuned, trials, chosen, met = inc_backend.autotune(
        graph, configs, inc_backend.calibrate(job.samples), ctx.data.input_shape, lambda path: ctx.score(path, "val"), reference, job.max_accuracy_drop,
    )
    for row in trials:
        ctx.log.info(f"neural-compressor autotune: {row['config']}: val acc {row['val_accuracy']:.4f} (drop {row['drop_points']:.2f})")
    inc_backend.export_folded(tuned, ctx.data.input_shape, job.out)
    report_budget(met, trials[chosen]["drop_points"], job.max_accuracy_drop, ctx.log)
    summary = {
        "budget_points": job.max_accuracy_drop,
        "budget_met": met,
        "fp32_val_accuracy": round(reference, 5),
        "chosen": trials[chosen],
        "fp32_nodes": [],
        "trials": trials,
        "note": "neural-compressor's torch back end without IPEX tunes global settings only; no per-node FP32 fallback",
    }
    return f"int8 {trials[chosen]['config']} on {len(job.samples)} samples, chosen by autotune", {"accuracy_aware": summary}


register(Route("neural-compressor", "static", static, CALIBRATIONS, extra="neural-compressor"))
register(Route("neural-compressor", "accuracy_aware", autotune, CALIBRATIONS, extra="neural-compressor"))
