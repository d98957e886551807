"""`validate`: every deployable file in its own runtime, judged against every device profile of the recipe.

Every variant the run made (FP32 and, after `quantize`, INT8; per runtime `export` built: ONNX
Runtime, ExecuTorch, ncnn, OpenVINO) is measured in its runtime: accuracy on the validation split
and on the test split, latency on this host at batch 1 on one thread, whatever the host has
(variants timed in interleaved rounds, so host noise cannot pick the winner), scaled to each device
by its profile (`DeviceProfile.estimate_ms`: the device's one-thread factor and its thread speed-up)
and labelled `estimated` unless the profile is the host itself. Where a profile names a real board
(`boards:`), every file it admits is timed on that board instead (`measured on board …`, the estimate
beside it), and the choice and the gates read the board's figures (`on_boards: false` estimates). Each device then gets, among the
runtimes its profile admits, the variant that meets its budgets **on the validation figures**, and
among those the one its profile prefers (latency by default; `pipeline/deploy/variant_choice.py`),
with the reason and what it traded. The test figures are read only after the choice: they are the
verdict the gate judges. `artifact: onnx_int8` forces INT8 everywhere; `ship: {device: file}` pins
a device's file (a tuned recipe carries its trial's, `pipeline/deploy/pinned_files.py`). After a `nested` stage every
width's files are candidates too, and a device gets the widest width that meets all its budgets on
validation.

When `export` kept early exits, the cascade's test accuracy, the share of samples leaving at each
exit, and its expected latency (segment latencies weighted by how many samples run them) are
reported beside the full model's; budgets are judged on the full model, which is what ships.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporters import onnx_outputs
from pipeline.boards.board_timing import measure_on_boards
from pipeline.core.errors import StageError
from pipeline.core.metrics import label_of
from pipeline.core.state import DEPLOYABLE, ModelState, artifact_kind, artifact_width
from pipeline.deploy.device_figures import Variant, judge_devices, measure
from pipeline.deploy.pinned_files import devices_not_in_recipe, pinned_files
from pipeline.runtime.early_exit import read_cascade, summarize
from pipeline.runtime.onnx_files import (
    HOST_THREADS,
    measure_latency,
    split_outputs,
)
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.evaluation import size_figures


class ValidateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: Literal[("auto", *DEPLOYABLE)] = Field(
        "auto", description="auto: per device, the variant that meets the budgets on validation, then the profile's preference (latency by default); a name forces that file"
    )
    warmup: int = Field(20, ge=0)
    runs: int = Field(200, ge=10, description="timed runs per variant and thread count")
    on_boards: bool = Field(True, description="where a device profile names a real board, time every candidate file on it (the choice and the gates read those figures); false: estimate from this host")
    ship: dict[str, str] = Field(
        default_factory=dict, description="device name -> the file it ships, already chosen (e.g. raspberry-pi-4: onnx_int8); the others choose "
        "as usual. `compress tune` writes its trial's choices here, so a tuned recipe ships the files the study scored however this run's timings fall",
    )

    @model_validator(mode="after")
    def _one_way_to_force(self) -> "ValidateConfig":
        if self.ship and self.artifact != "auto":
            raise ValueError(f"give artifact ({self.artifact}, for every device) or ship (per device), not both")
        return self


def check_validate(cfg: ValidateConfig, earlier: Earlier) -> list[str]:
    """`ship` may name only the recipe's devices (the files are checked when the run has made them)."""
    return devices_not_in_recipe(cfg.ship, earlier.device_names)


@stage("validate", ValidateConfig, requires=("onnx_fp32",), uses_device_profiles=True, check=check_validate, tasks=("classification", "detection"))
def run(cfg: ValidateConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Measure every variant's accuracy, latency and size, judge each device's budgets, pick its file."""
    if cfg.artifact != "auto" and cfg.artifact not in state.artifacts:
        raise StageError(f"validate.artifact: {cfg.artifact} was asked but no earlier stage made it; add a quantize stage or use auto")
    kinds = DEPLOYABLE if cfg.artifact == "auto" else (cfg.artifact,)
    names = sorted((n for n in state.artifacts if artifact_kind(n) in kinds), key=lambda n: (kinds.index(artifact_kind(n)), -artifact_width(n)))
    forced = pinned_files(cfg.ship, cfg.artifact, names, [p.name for p in ctx.profiles])  # checked before anything is measured
    reference, val_reference = state.reference.get("accuracy"), state.reference.get("val_accuracy")
    variants = {}
    for name in names:
        path = ctx.resolve(state.artifacts[name])
        val = ctx.score(path, "val")  # what chooses
        acc = ctx.score(path, "test")  # what the gate judges, after
        variants[name] = Variant(name, path, acc, _drop(reference, acc), val, _drop(val_reference, val))
    sample = ctx.data.test.take(1)[0].numpy()
    measure(list(variants.values()), sample, ctx.profiles, cfg.warmup, cfg.runs)
    if cfg.on_boards:
        measure_on_boards(list(variants.values()), sample, ctx.profiles, cfg.warmup, cfg.runs)
    devices = judge_devices(list(variants.values()), ctx.profiles, forced, ctx.log, ctx.task.name, label_of(ctx.metric))
    shipped = Counter(d["artifact"] for d in devices.values()).most_common(1)
    main = variants[shipped[0][0] if shipped else names[0]]
    ctx.metrics.update(
        artifact=main.name,
        accuracy=round(main.accuracy, 5),
        val_accuracy=round(main.val_accuracy, 5),
        chosen_on="validation",
        **{**shipped_figures(state, main.name, ctx.data.input_shape), "size_bytes": main.size},
        host_latency_ms=main.host_latency,
        shipped={device: d["artifact"] for device, d in devices.items()},
        variants={
            v.name: {"val_accuracy": round(v.val_accuracy, 5), "accuracy": round(v.accuracy, 5), "size_bytes": v.size, "size_gzip_bytes": v.size_gzip, "host_latency_ms": v.host_latency, "peak_memory_mb": v.peak_memory}
            for v in variants.values()
        },
    )
    if "onnx_exits" in state.artifacts:
        ctx.metrics["early_exit"] = early_exit_figures(ctx.resolve(state.artifacts["onnx_exits"]), ctx.resolve(state.artifacts["onnx_fp32"]), cfg, ctx)
        for profile in ctx.profiles:
            host = ctx.metrics["early_exit"]["host_latency_ms"]
            devices[profile.name]["early_exit"] = {
                "accuracy": ctx.metrics["early_exit"]["accuracy"],
                "expected_latency_ms": profile.estimate_ms(host["expected"]),
                "full_model_latency_ms": profile.estimate_ms(host["full_model"]),
                "latency_kind": profile.latency_kind,
            }
    state.devices = devices
    return state


def _drop(reference: float | None, accuracy: float) -> float | None:
    """Points below the float model's figure on the same split; None where no reference is known."""
    return None if reference is None else (reference - accuracy) * 100


def shipped_figures(state: ModelState, name: str, input_shape: tuple[int, ...]) -> dict:
    """Params and MACs of the network in file `name`: a nested width's own, else the model's."""
    width = artifact_width(name)
    entry = next((w for w in state.widths if w["width"] == width), None)
    if width < 1 and entry is not None:
        return {"params": entry["params"], "macs": entry["macs"], "width": width}
    return size_figures(state.model, input_shape)


def early_exit_figures(exits_path, fp32_path, cfg: ValidateConfig, ctx: StageContext) -> dict:
    """Test-split behaviour of the cascade, and its expected batch-1 latency: each segment's p50,
    weighted by the share of samples that run it, against the full FP32 model's p50."""
    cascade = read_cascade(exits_path)
    exits, thresholds, segments = cascade.exits, cascade.thresholds, cascade.segments
    outputs, labels = split_outputs(exits_path, ctx.data.test)
    summary = summarize(exits, outputs[1 : 1 + len(exits)], outputs[0], labels, thresholds)
    reach = 1 - np.cumsum([0] + [row["fraction"] for row in summary["exits"]][:-1])  # share of samples that run segment k
    sample = ctx.data.test.take(1)[0].numpy()
    value, per_segment = sample, []
    for segment in segments:
        per_segment.append(measure_latency(segment, value, HOST_THREADS, cfg.warmup, cfg.runs)["p50"])
        value = onnx_outputs(segment, value)[-1]  # the features the next segment starts from
    latency = {
        "segments_p50": per_segment,
        "expected": round(float(np.dot(reach, per_segment)), 5),
        "full_model": measure_latency(fp32_path, sample, HOST_THREADS, cfg.warmup, cfg.runs)["p50"],
    }
    ctx.log.info(
        f"validate early exit: acc {summary['accuracy']:.4f} (full {summary['full_model_accuracy']:.4f}), "
        + ", ".join(f"{r['exit']} {r['fraction']:.0%}" for r in summary["exits"])
    )
    return {**summary, "thresholds": thresholds, "host_latency_ms": latency}
