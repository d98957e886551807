"""`prune`: structured pruning with torch-pruning's dependency graph; channels are physically removed.

Pruning happens in `steps` rounds, each followed by recovery fine-tuning, so accuracy is reported
after every round and a collapse shows where it happened. Targets (`pipeline/pruning/targets.py`,
one algorithm per kind):

- `remove_channels: r` removes the fraction r of channels (per layer, or globally);
- `keep_macs: f` / `keep_params: f` prunes in small increments until MACs / params fall to f of
  the starting figure, spread over the rounds (linear or geometric schedule);
- `max_macs: N` / `max_params: N` does the same toward an absolute figure (a budget as written);
- `device: NAME` with `latency_p90_ms: X` or `size_kb: Y` prunes one small increment at a time,
  measuring the exported model's latency (estimated for that device) or file size after each, and
  stops at the least pruning that meets the budget; every increment is in `rounds`.

Recovery is fine-tuning from the labels, or distillation from the model as it was before pruning
(`recovery: distill`). Auxiliary heads are pruned with the backbone (they are in the traced graph)
and keep training during recovery.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pipeline.core.errors import StageError
from pipeline.core.metrics import label_of
from pipeline.core.state import ModelState
from pipeline.pruning.channel_mixing import ChannelMixing
from pipeline.pruning.pruner import build_pruner, prune_once
from pipeline.pruning.targets import TARGETS, PruneTarget, Pruning
from pipeline.stages.base import StageContext, stage
from pipeline.training.distillation import Distillation, KDConfig
from pipeline.training.evaluation import size_figures
from pipeline.models.heads import headed
from pipeline.training.evaluation import head_accuracy
from pipeline.training.loop import TrainConfig
from pipeline.training.session import train


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


@stage("prune", PruneConfig, changes_model=True, removes_channels=True, trains=True, tasks=("classification", "detection"))
def run(cfg: PruneConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Prune channels with torch-pruning in rounds with recovery (fine-tuning or distillation); records each round."""
    data, shape = ctx.data, ctx.data.input_shape
    if ctx.task.name != "classification" and cfg.importance == "taylor":
        raise StageError(f"prune: importance: taylor reads class logits, which a {ctx.task.name} model does not return; "
                         "use importance magnitude, bn_scale or lamp")
    start = size_figures(state.model, shape)
    if not state.reference:
        state.reference = {
            "accuracy": round(ctx.score(state.model, "test"), 5),
            "val_accuracy": round(ctx.score(state.model, "val"), 5),
            **start, "source": "before prune",
        }
    kind = TARGETS[cfg.target.kind]
    teacher = copy.deepcopy(state.model) if cfg.recovery == "distill" else None
    with headed(state) as traced, ChannelMixing() as mixing:  # heads in the traced graph lose their input channels with the backbone's
        traced.to(ctx.device)
        pruner = build_pruner(
            traced, torch.zeros(1, *shape, device=ctx.device), cfg.importance,
            global_pruning=cfg.global_pruning, pruning_ratio=kind.ratio(cfg.target, cfg.max_layer_ratio),
            max_layer_ratio=cfg.max_layer_ratio, increments=kind.increments(cfg.steps), ignore=cfg.ignore,
            round_to=cfg.round_to, num_classes=ctx.task.prediction_outputs(data.num_classes), mixing=mixing,
        )
        if mixing.barriers:
            ctx.log.info(f"prune: {mixing.barriers} reshape(s) moving values across channels (a channel shuffle; a detector's output layout): the channels passing through them stay unpruned")
        outcome = kind.run(cfg.target, Pruning(
            pruner=pruner, traced=traced, input_shape=shape, steps=cfg.steps, schedule=cfg.schedule, max_layer_ratio=cfg.max_layer_ratio,
            step=lambda until=None: prune_once(pruner, traced, cfg.importance, data, ctx.device, until, whole_groups=cfg.round_to is not None),
            recover=lambda desc: recover(cfg, state, teacher, ctx, desc),
            val_accuracy=lambda: ctx.score(state.model, "val"),
            log=ctx.log,
            label=label_of(ctx.metric),
        ))
        traced.cpu()
        if state.heads:
            ctx.metrics["heads_accuracy"] = head_accuracy(traced, data.test)
    ctx.metrics.update(outcome.details)
    ctx.metrics.update(
        ctx.figures(state.model), before=start, rounds=outcome.rounds, target_reached=outcome.reached, recovery=cfg.recovery
    )
    state.compressed = True
    state.model_changed()
    return state


def recover(cfg: PruneConfig, state: ModelState, teacher: nn.Module | None, ctx: StageContext, desc: str) -> None:
    """Fine-tune after a pruning round, from the labels or from the unpruned model (heads keep learning too)."""
    with headed(state) as view:
        if teacher is None:
            objective = ctx.task.objective(view, cfg.finetune)
        else:
            objective = Distillation(cfg.distill, teacher, view, ctx.data.input_shape, ctx.device, cfg.finetune.label_smoothing,
                                     ctx.task.distillation(view)).objective
        # a one-epoch recovery is summed up by its round's line; a longer one logs each epoch, or a
        # 20-minute recovery would leave the log silent
        train(view, cfg.finetune, ctx, objective, desc=desc, epoch_log=cfg.finetune.epochs > 1)
