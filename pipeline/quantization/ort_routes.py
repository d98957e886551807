"""onnxruntime's four routes: static, dynamic and accuracy-aware quantize the exported FP32 file
(so what is calibrated is what ships, at every nested width); qat fine-tunes with fake quantization
and exports the converted model."""

from __future__ import annotations

import shutil
from dataclasses import replace

import torch

from pipeline.quantization import accuracy_aware, ort_backend, qat
from pipeline.quantization.route import Job, Route, RouteContext, register, report_budget

CALIBRATIONS = tuple(ort_backend.CALIBRATION)
FORMATS = tuple(ort_backend.FORMAT)


def static(job: Job, ctx: RouteContext):
    prepared = ort_backend.prepare(job.fp32, ctx.stage_dir / "model.prepared.onnx")
    with ctx.progress(None, total=len(job.samples), desc="calibrate") as bar:
        ort_backend.quantize_static_file(prepared, job.out, job.samples, job.settings, tick=bar.update)
    prepared.unlink()
    return f"int8 static {job.settings.describe()} on {len(job.samples)} samples", {}


def dynamic(job: Job, ctx: RouteContext):
    prepared = ort_backend.prepare(job.fp32, ctx.stage_dir / "model.prepared.onnx")
    ort_backend.quantize_dynamic_file(prepared, job.out, job.settings.per_channel, job.settings.reduce_range)
    prepared.unlink()
    return f"int8 dynamic: Linear layers with {'per-channel' if job.settings.per_channel else 'per-tensor'} S8 weights, activations quantized at run time", {}


def accuracy_aware_search(job: Job, ctx: RouteContext):
    """Search calibrations, then FP32 fallbacks, each candidate scored on the validation split in onnxruntime."""
    prepared = ort_backend.prepare(job.fp32, ctx.stage_dir / "model.prepared.onnx")
    trials_dir = ctx.stage_dir / "trials"
    trials_dir.mkdir(exist_ok=True)
    built = iter(range(10**6))

    def build(calibration: str, excluded: tuple[str, ...]):
        path = trials_dir / f"trial_{next(built)}.onnx"
        return ort_backend.quantize_static_file(prepared, path, job.samples, replace(job.settings, calibration=calibration), excluded)

    reference = ctx.score(job.fp32, "val")
    result = accuracy_aware.search(
        build, lambda path: ctx.score(path, "val"), list(job.calibrations), ort_backend.compute_nodes(prepared),
        reference, job.max_accuracy_drop, job.max_fp32_nodes, log=ctx.log.info,
    )
    shutil.copyfile(result.best.path, job.out)
    shutil.rmtree(trials_dir)
    prepared.unlink()
    report_budget(result.budget_met, result.best.row(reference)["drop_points"], job.max_accuracy_drop, ctx.log)
    settings = replace(job.settings, calibration=result.best.calibration)
    fallbacks = f", {len(result.best.excluded)} node(s) left FP32" if result.best.excluded else ""
    return f"int8 accuracy-aware {settings.describe()}{fallbacks}", {"accuracy_aware": result.summary()}


def quantization_aware_training(job: Job, ctx: RouteContext):
    """Fake-quantized fine-tuning, then the converted model exported with its learned ranges."""
    model = qat.prepare(job.model, ctx.data.input_shape, torch.from_numpy(job.samples))
    history = qat.finetune(model, job.model, job.qat, ctx)
    exported = qat.export_int8(model, job.out, job.parity_inputs)  # the stage stamps the FP32 file's metadata on it
    teacher = "distilled from the float model" if job.qat.distill else "labels only"
    return (
        f"int8 QAT (torch.ao FX, x86 qconfig: per-channel S8 weights, U8 activations), {job.qat.train.epochs} epochs, {teacher}",
        {"qat": {"history": history, "export_parity": exported.to_json() | {"path": job.out.name}}},
    )


register(Route("onnxruntime", "static", static, CALIBRATIONS, FORMATS, quantizes_file=True))
register(Route(
    "onnxruntime", "dynamic", dynamic, CALIBRATIONS, FORMATS, quantizes_file=True, calibrated=False,
    coverage_hint=" (dynamic quantizes Linear layers only; for a conv model use method static)",
))
register(Route("onnxruntime", "accuracy_aware", accuracy_aware_search, CALIBRATIONS, FORMATS, quantizes_file=True))
register(Route("onnxruntime", "qat", quantization_aware_training, CALIBRATIONS, FORMATS, trains=True))
