"""`validate`: the deployable file in onnxruntime, judged against every device profile of the recipe.

Accuracy is measured once on the test split (kernels do not change the class a model predicts beyond
noise); latency is measured on this host at batch 1 with each profile's thread count and multiplied
by the profile's factor, labelled `estimated` unless the profile is the host itself.

When `export` kept early exits, the cascade's test accuracy, the share of samples leaving at each
exit, and its expected latency (segment latencies weighted by how many samples run them) are
reported beside the full model's; budgets are judged on the full model, which is what ships.
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import onnx
from pydantic import BaseModel, ConfigDict, Field

from exporters import onnx_outputs
from pipeline.budgets import judge, overall
from pipeline.early_exit import summarize
from pipeline.errors import StageError
from pipeline.evaluation import size_figures
from pipeline.onnx_runtime import measure_latency, onnx_accuracy
from pipeline.stages import StageContext, stage
from pipeline.state import ModelState


class ValidateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: Literal["auto", "onnx_int8", "onnx_fp32"] = Field("auto", description="auto: INT8 when a quantize stage made one")
    warmup: int = Field(20, ge=0)
    runs: int = Field(200, ge=10, description="timed runs per thread count")


@stage("validate", ValidateConfig, requires=("onnx_fp32",), uses_device_profiles=True)
def run(cfg: ValidateConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Measure accuracy, latency and size of the exported model and judge each device's budgets."""
    name = cfg.artifact if cfg.artifact != "auto" else ("onnx_int8" if "onnx_int8" in state.artifacts else "onnx_fp32")
    if name not in state.artifacts:
        raise StageError(f"validate.artifact: {name} was asked but no earlier stage made it; add a quantize stage or use auto")
    path = ctx.resolve(state.artifacts[name])
    size = path.stat().st_size
    acc = onnx_accuracy(path, ctx.data.test)
    reference = state.reference.get("accuracy")
    drop = None if reference is None else (reference - acc) * 100
    sample = ctx.data.test.x[:1].numpy()
    host_latency: dict[int, dict] = {}
    devices = {}
    for profile in ctx.profiles:
        if profile.threads not in host_latency:
            host_latency[profile.threads] = measure_latency(path, sample, profile.threads, cfg.warmup, cfg.runs)
        measured = host_latency[profile.threads]
        latency = {q: round(measured[q] * profile.latency_factor, 5) for q in ("p50", "p90", "p99")}
        figures = {"size_kb": size / 1024, "latency_p90_ms": latency["p90"], "accuracy": acc, "accuracy_drop": drop}
        budgets = judge(profile.budgets, figures)
        devices[profile.name] = {
            "artifact": name,
            "accuracy": round(acc, 5),
            "accuracy_drop_points": None if drop is None else round(drop, 4),
            "latency_ms": latency,
            "latency_kind": profile.latency_kind,
            "host_latency_ms": measured,
            "threads": profile.threads,
            "size_bytes": size,
            "budgets": budgets,
            "passed": overall(budgets),
        }
        ctx.log.info(
            f"validate {profile.name}: acc {acc:.4f}, p90 {latency['p90']:.3f} ms ({profile.latency_kind}), "
            f"{size / 1024:.1f} KiB -> {'PASS' if devices[profile.name]['passed'] else 'FAIL'}"
        )
    ctx.metrics.update(
        artifact=name,
        accuracy=round(acc, 5),
        **{**size_figures(state.model, ctx.data.input_shape), "size_bytes": size},
        host_latency_ms=host_latency,
    )
    if "onnx_exits" in state.artifacts:
        ctx.metrics["early_exit"] = early_exit_figures(ctx.resolve(state.artifacts["onnx_exits"]), ctx.resolve(state.artifacts["onnx_fp32"]), cfg, ctx)
        for profile in ctx.profiles:
            host = ctx.metrics["early_exit"]["host_latency_ms"][str(profile.threads)]
            devices[profile.name]["early_exit"] = {
                "accuracy": ctx.metrics["early_exit"]["accuracy"],
                "expected_latency_ms": round(host["expected"] * profile.latency_factor, 5),
                "full_model_latency_ms": round(host["full_model"] * profile.latency_factor, 5),
                "latency_kind": profile.latency_kind,
            }
    state.devices = devices
    return state


def early_exit_figures(exits_path, fp32_path, cfg: ValidateConfig, ctx: StageContext) -> dict:
    """Test-split behaviour of the cascade, and its expected batch-1 latency: each segment's p50,
    weighted by the share of samples that run it, against the full FP32 model's p50."""
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(exits_path)).metadata_props if p.key.startswith("exit")}
    exits, thresholds, segments = meta["exits"], meta["exit_thresholds"], [exits_path.parent / s for s in meta["exit_segments"]]
    outputs = onnx_outputs(exits_path, ctx.data.test.x.numpy())
    summary = summarize(exits, outputs[1 : 1 + len(exits)], outputs[0], ctx.data.test.y.numpy(), thresholds)
    reach = 1 - np.cumsum([0] + [row["fraction"] for row in summary["exits"]][:-1])  # share of samples that run segment k
    latency = {}
    for threads in sorted({p.threads for p in ctx.profiles}):
        value, per_segment = ctx.data.test.x[:1].numpy(), []
        for segment in segments:
            per_segment.append(measure_latency(segment, value, threads, cfg.warmup, cfg.runs)["p50"])
            value = onnx_outputs(segment, value)[-1]  # the features the next segment starts from
        latency[str(threads)] = {
            "segments_p50": per_segment,
            "expected": round(float(np.dot(reach, per_segment)), 5),
            "full_model": measure_latency(fp32_path, ctx.data.test.x[:1].numpy(), threads, cfg.warmup, cfg.runs)["p50"],
        }
    ctx.log.info(
        f"validate early exit: acc {summary['accuracy']:.4f} (full {summary['full_model_accuracy']:.4f}), "
        + ", ".join(f"{r['exit']} {r['fraction']:.0%}" for r in summary["exits"])
    )
    return {**summary, "thresholds": thresholds, "host_latency_ms": latency}
