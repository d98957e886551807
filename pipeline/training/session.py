"""Training a model inside a stage: the shared loop with the stage's data, device, seed and logging.

Every stage that trains (train, aux_heads, self_distill, distill, prune's recovery, QAT) calls
`train` instead of repeating the call into `fit` and what follows it (back to the CPU, each head's
test accuracy), so a change to how stages train is made here once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from pipeline.core.epoch_feed import StageFeed
from pipeline.core.metrics import Metric
from pipeline.data import DataSplits
from pipeline.models.heads import HeadedModel
from pipeline.training.evaluation import head_accuracy
from pipeline.training.loop import TrainConfig, fit, schedule_end_figure
from pipeline.training.objectives import Objective


class TrainingContext(Protocol):
    """What training needs from a stage's context (a `StageContext` is one)."""

    data: DataSplits
    device: torch.device
    generator: torch.Generator
    quiet: bool
    log: logging.Logger
    metric: Metric  # the recipe's: what each epoch's validation figure (and early stopping) reads
    feed: StageFeed | None  # told each epoch's validation figure and the schedule's last (a tune's pruner and clock)
    task: Any  # the recipe's task (pipeline/tasks/): training reads its `augment`, which keeps the labels true


@dataclass
class Trained:
    history: list[dict]  # one row per epoch: loss, each term's mean, validation accuracy
    heads_accuracy: dict[str, float] | None  # test accuracy of each head and of the backbone (`final`); None without heads


def train(model: nn.Module, cfg: TrainConfig, ctx: TrainingContext, objective: Objective | None = None, desc: str = "train", epoch_log: bool = True) -> Trained:
    """Train `model` (a `HeadedModel` or a plain module) in place; it ends on the CPU.

    `epoch_log: False` sends the per-epoch lines to debug (prune's one-epoch recovery rounds).
    """
    log = ctx.log.info if epoch_log else ctx.log.debug
    history = fit(model, ctx.data, cfg, device=ctx.device, generator=ctx.generator, desc=desc, quiet=ctx.quiet, objective=objective, log=log,
                  metric=ctx.metric, after_epoch=ctx.feed.epoch if ctx.feed else None, augment_batch=ctx.task.augment)
    if ctx.feed and history:
        ctx.feed.schedule_end(schedule_end_figure(history, cfg))
    model.cpu()
    heads = head_accuracy(model, ctx.data.test) if isinstance(model, HeadedModel) and len(model.heads) else None
    return Trained(history, heads)
