"""`prune`: structured pruning with torch-pruning's dependency graph; channels are physically removed.

Pruning happens in `steps` rounds, each followed by recovery fine-tuning, so accuracy is reported
after every round and a collapse shows where it happened. Targets:

- `remove_channels: r` removes the fraction r of channels (per layer, or globally);
- `keep_macs: f` / `keep_params: f` prunes in small increments until MACs / params fall to f of
  the starting figure, spread evenly over the rounds.

- `device: NAME` with `latency_p90_ms: X` or `size_kb: Y` prunes one small increment at a time,
  measuring the exported model's latency (estimated for that device) or file size after each, and
  stops at the least pruning that meets the budget; every increment is in `rounds`.

Recovery is fine-tuning from the labels, or distillation from the model as it was before pruning
(`recovery: distill`). Auxiliary heads are pruned with the backbone (they are in the traced graph)
and keep training during recovery.
"""

from __future__ import annotations

import copy
from typing import Callable, Literal

import torch
import torch.nn.functional as F
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from pipeline.core.errors import DeviceProfileError, StageError
from pipeline.core.state import ModelState
from pipeline.deploy.profiles import load_profile
from pipeline.runtime.device_estimate import measure_on_device
from pipeline.stages.base import StageContext, stage
from pipeline.training.distillation import Distillation, KDConfig
from pipeline.training.evaluation import accuracy, model_metrics, size_figures
from pipeline.training.heads import HeadedModel, head_accuracy, supervised_objective
from pipeline.training.loop import TrainConfig, fit

IMPORTANCE: dict[str, Callable[[], tp.importance.Importance]] = {
    "magnitude": lambda: tp.importance.GroupMagnitudeImportance(p=2),
    "taylor": lambda: tp.importance.GroupTaylorImportance(),
    "bn_scale": lambda: tp.importance.BNScaleImportance(),
    "lamp": lambda: tp.importance.LAMPImportance(p=2),
}
FINE_INCREMENTS = 60  # pruner steps available to approach a MACs/params target


class PruneTarget(BaseModel):
    """Exactly one of: remove_channels, keep_macs, keep_params, or a device budget
    (`device` with one of `latency_p90_ms` / `size_kb`)."""

    model_config = ConfigDict(extra="forbid")

    remove_channels: float | None = Field(None, gt=0, lt=1, description="fraction of channels to remove")
    keep_macs: float | None = Field(None, gt=0, lt=1, description="fraction of the starting MACs to keep")
    keep_params: float | None = Field(None, gt=0, lt=1, description="fraction of the starting parameters to keep")
    device: str | None = Field(None, description="device profile (name or .yaml path) whose latency or size the budget is for")
    latency_p90_ms: float | None = Field(None, gt=0, description="with device: p90 latency at batch 1 on that device (estimated from the host)")
    size_kb: float | None = Field(None, gt=0, description="with device: FP32 ONNX file size, KiB")

    @model_validator(mode="after")
    def _exactly_one(self) -> "PruneTarget":
        given = [k for k in ("remove_channels", "keep_macs", "keep_params", "device") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of remove_channels, keep_macs, keep_params, device (got {', '.join(given) or 'none'})")
        budgets = [k for k in ("latency_p90_ms", "size_kb") if getattr(self, k) is not None]
        if self.device is not None and len(budgets) != 1:
            raise ValueError(f"a device target needs exactly one of latency_p90_ms, size_kb (got {', '.join(budgets) or 'none'})")
        if self.device is None and budgets:
            raise ValueError(f"{budgets[0]} needs device: the profile it is measured for")
        if self.device is not None:
            try:
                load_profile(self.device)  # an unknown or invalid profile is a recipe error, before any training
            except DeviceProfileError as e:
                raise ValueError(str(e)) from None
        return self

    @property
    def budget(self) -> tuple[str, float]:
        return ("latency_p90_ms", self.latency_p90_ms) if self.latency_p90_ms is not None else ("size_kb", self.size_kb)


class PruneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: PruneTarget
    importance: Literal["magnitude", "taylor", "bn_scale", "lamp"] = "magnitude"
    global_pruning: bool = Field(False, description="rank channels across layers instead of pruning each layer evenly")
    steps: int = Field(3, ge=1, le=50, description="pruning rounds, each followed by recovery fine-tuning")
    schedule: Literal["linear", "geometric"] = Field(
        "linear",
        description="keep_macs/keep_params goals per round: linear removes the same amount each round (the last "
        "round cuts the largest share of what is left); geometric removes the same fraction each round",
    )
    max_layer_ratio: float = Field(0.9, gt=0, lt=1, description="never remove more than this fraction of any layer")
    round_to: int | None = Field(None, ge=1, description="keep channel counts multiples of this (hardware-friendly)")
    ignore: list[str] = Field(default_factory=list, description="module names to leave unpruned (the classifier always is)")
    finetune: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=1), description="recovery after each round")
    recovery: Literal["finetune", "distill"] = Field(
        "finetune", description="finetune: labels only; distill: the model from before pruning teaches the pruned one (KD settings in `distill`)"
    )
    distill: KDConfig = Field(default_factory=KDConfig, description="teacher-to-student settings when recovery: distill")


@stage("prune", PruneConfig, changes_model=True)
def run(cfg: PruneConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Prune channels with torch-pruning in rounds with recovery (fine-tuning or distillation); records each round."""
    data, shape = ctx.data, ctx.data.input_shape
    start = size_figures(state.model, shape)
    if not state.reference:
        state.reference = {"accuracy": round(accuracy(state.model, data.test), 5), **start, "source": "before prune"}
    target = cfg.target
    measure, keep = ("macs", target.keep_macs) if target.keep_macs else ("params", target.keep_params)
    by_ratio = target.remove_channels is not None
    by_device = target.device is not None
    teacher = copy.deepcopy(state.model) if cfg.recovery == "distill" else None
    example = torch.zeros(1, *shape, device=ctx.device)
    with state.headed() as traced:  # heads in the traced graph lose their input channels with the backbone's
        model = state.model
        traced.to(ctx.device)
        pruner = tp.pruner.MetaPruner(
            traced,
            example,
            forward_fn=lambda m, x: m.forward_all(x),
            importance=IMPORTANCE[cfg.importance](),
            global_pruning=cfg.global_pruning,
            pruning_ratio=target.remove_channels if by_ratio else cfg.max_layer_ratio,
            max_pruning_ratio=cfg.max_layer_ratio,
            iterative_steps=cfg.steps if by_ratio else FINE_INCREMENTS,
            ignored_layers=ignored_layers(model, cfg.ignore, data.num_classes) + classifiers(traced.heads, data.num_classes),
            round_to=cfg.round_to,
        )
        if by_device:
            rounds, reached = prune_to_device(cfg, state, teacher, pruner, traced, ctx)
        else:
            rounds = prune_in_rounds(cfg, state, teacher, pruner, traced, ctx, start)
        traced.cpu()
        if state.heads:
            ctx.metrics["heads_accuracy"] = head_accuracy(traced, data.test)

    metrics = model_metrics(model, data.test, shape)
    if not by_device:
        reached = by_ratio or metrics[measure] <= keep * start[measure] * 1.001
        if not reached:
            ctx.log.warning(
                f"prune: could not reach keep_{measure}={keep} within max_layer_ratio={cfg.max_layer_ratio}: "
                f"stopped at {metrics[measure] / start[measure]:.3f} of the starting {measure}"
            )
    ctx.metrics.update(metrics, before=start, rounds=rounds, target_reached=reached, recovery=cfg.recovery)
    state.compressed = True
    state.model_changed()
    return state


def prune_in_rounds(cfg: PruneConfig, state: ModelState, teacher, pruner, traced: HeadedModel, ctx: StageContext, start: dict) -> list[dict]:
    """`steps` rounds toward a channel ratio or a MACs/params goal, each followed by recovery."""
    target, model, shape = cfg.target, state.model, ctx.data.input_shape
    measure, keep = ("macs", target.keep_macs) if target.keep_macs else ("params", target.keep_params)
    rounds = []
    for k in range(1, cfg.steps + 1):
        if target.remove_channels is not None:
            prune_once(pruner, traced, cfg.importance, ctx)
        else:
            goal = keep ** (k / cfg.steps) if cfg.schedule == "geometric" else 1 - (1 - keep) * k / cfg.steps
            while size_figures(model, shape)[measure] > goal * start[measure] and pruner.current_step < pruner.iterative_steps:
                prune_once(pruner, traced, cfg.importance, ctx)
        recover(cfg, state, teacher, ctx, f"recover {k}/{cfg.steps}")
        figures = size_figures(model, shape)
        row = {"round": k, **figures, "val_accuracy": round(accuracy(model, ctx.data.val, device=ctx.device), 5)}
        rounds.append(row)
        ctx.log.info(
            f"prune round {k}/{cfg.steps}: params {figures['params']:,}, MACs {figures['macs'] / 1e6:.2f} M, "
            f"val acc {row['val_accuracy']:.4f}"
        )
    return rounds


def prune_to_device(cfg: PruneConfig, state: ModelState, teacher, pruner, traced: HeadedModel, ctx: StageContext) -> tuple[list[dict], bool]:
    """Prune one small increment at a time, measuring the exported model on the device after each,
    and stop at the first (least pruned) model within the budget. There are `steps` recovery rounds in
    all: one every `FINE_INCREMENTS / steps` increments while pruning goes on, the rest at the end
    (so a budget met early still gets the full recovery).
    A latency that meets the budget is confirmed by a second, longer measurement before the search
    stops (timings on a shared host are noisy). Returns one row per increment and whether the budget
    was met; if not, says so with the closest figure."""
    profile = load_profile(cfg.target.device)
    figure, limit = cfg.target.budget
    shape, model = ctx.data.input_shape, state.model
    every = max(1, FINE_INCREMENTS // cfg.steps)
    rows = []

    def measure(step: int, figures: dict) -> dict:
        row = {"step": step, **figures, **measure_on_device(model, shape, profile)}
        row["meets"] = row[figure] <= limit
        if row["meets"] and figure == "latency_p90_ms":  # one lucky timing must not end the search
            confirm = measure_on_device(model, shape, profile, runs=400)
            row["confirmed_latency_p90_ms"] = confirm["latency_p90_ms"]
            row["meets"] = confirm["latency_p90_ms"] <= limit
        rows.append(row)
        ctx.log.info(
            f"prune toward {profile.name} {figure} <= {limit}: step {step}, MACs {row['macs'] / 1e6:.2f} M, "
            f"{figure} {row[figure]:.4g} ({row['latency_kind'] if figure == 'latency_p90_ms' else 'on disk'})"
        )
        return row

    row = measure(0, size_figures(model, shape))
    recoveries = 0
    while not row["meets"] and pruner.current_step < pruner.iterative_steps:
        prune_once(pruner, traced, cfg.importance, ctx)
        if pruner.current_step % every == 0 and recoveries < cfg.steps - 1:
            recoveries += 1
            recover(cfg, state, teacher, ctx, f"recover {recoveries}/{cfg.steps} at step {pruner.current_step}")
        figures = size_figures(model, shape)
        if figures["params"] != row["params"]:  # an increment that removed nothing is not re-timed
            row = measure(pruner.current_step, figures)
    while pruner.current_step and recoveries < cfg.steps:  # a search that ended early spends the rest here
        recoveries += 1
        recover(cfg, state, teacher, ctx, f"recover {recoveries}/{cfg.steps}")
    for r in rows:
        r["val_accuracy"] = None
    rows[-1]["val_accuracy"] = round(accuracy(model, ctx.data.val, device=ctx.device), 5)
    if not row["meets"]:
        closest = min(r[figure] for r in rows)
        ctx.log.warning(
            f"prune: could not bring {figure} on {profile.name} to {limit} within max_layer_ratio={cfg.max_layer_ratio}; "
            f"closest {closest:.4g} after {pruner.current_step} increments"
        )
    ctx.metrics["device_target"] = {"device": profile.name, "figure": figure, "limit": limit, "met": row["meets"], "steps": len(rows) - 1}
    return rows, row["meets"]


def recover(cfg: PruneConfig, state: ModelState, teacher: nn.Module | None, ctx: StageContext, desc: str) -> None:
    """Fine-tune after a pruning round, from the labels or from the unpruned model (heads keep learning too)."""
    train = dict(data=ctx.data, cfg=cfg.finetune, device=ctx.device, generator=ctx.generator, desc=desc, quiet=ctx.quiet, log=ctx.log.debug)
    if teacher is None:
        with state.headed() as view:
            fit(view, objective=supervised_objective(view, cfg.finetune.label_smoothing), **train)
        return
    with Distillation(cfg.distill, teacher, state, ctx.data.input_shape, ctx.device, cfg.finetune.label_smoothing) as kd:
        fit(kd.view, objective=kd.objective, **train)


def prune_once(pruner: tp.pruner.MetaPruner, traced: HeadedModel, importance: str, ctx: StageContext) -> None:
    """One pruner step; Taylor importance first needs gradients from a few training batches (on
    every output, so the heads' layers, pruned with the backbone, have gradients too)."""
    if importance == "taylor":
        traced.zero_grad()
        for start in range(0, min(len(ctx.data.train), 4 * ctx.data.batch_size), ctx.data.batch_size):
            x = ctx.data.train.x[start : start + ctx.data.batch_size].to(ctx.device)
            y = ctx.data.train.y[start : start + ctx.data.batch_size].to(ctx.device)
            sum(F.cross_entropy(out, y) for out in traced.forward_all(x)).backward()
    pruner.step()
    traced.zero_grad(set_to_none=True)


def ignored_layers(model: nn.Module, names: list[str], num_classes: int) -> list[nn.Module]:
    """The classifier (any layer producing `num_classes` outputs) plus the user's named modules."""
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        prunable = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise StageError(f"prune.ignore: no module named {', '.join(unknown)}; conv/linear modules: {', '.join(prunable)}")
    return classifiers(model, num_classes) + [modules[n] for n in names]


def classifiers(model: nn.Module, num_classes: int) -> list[nn.Module]:
    """Layers whose outputs are the classes: pruning them would remove classes."""
    return [
        m for m in model.modules()
        if (isinstance(m, nn.Linear) and m.out_features == num_classes) or (isinstance(m, nn.Conv2d) and m.out_channels == num_classes)
    ]
