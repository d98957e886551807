"""What a task is: everything that differs between classification and detection, in one object.

A recipe's `task:` names one. The stages, the runner, the run folder, gates and bundles stay written
once and ask the task for what depends on it: which metric "accuracy" means by default, what the
data's labels must be, what the model must return, the training objective, the augmentation that
keeps labels true, and how many outputs the prediction layer has (the layer pruning spares).
Comparing two files' outputs (parity, INT8 agreement) is decided by the output itself, in
`devices/on_device/decisions.py:output_agreement`, because exporters and the torch-free script sit
below this room and must judge alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from pipeline.core.errors import DataError
from pipeline.core.registry import Registry
from pipeline.training.augment import Augment
from pipeline.training.loop import TrainConfig
from pipeline.training.objectives import Objective

# (images, labels, augment config, mean, std, generator) -> (images, labels, mix or None)
BatchAugment = Callable[[torch.Tensor, torch.Tensor, Augment, torch.Tensor, torch.Tensor, torch.Generator], tuple]


@dataclass(frozen=True)
class Task:
    name: str
    metric: str  # the default `metric:` of a recipe with this task
    targets: str  # what a data source's labels must be: "classes" or "boxes" (`DataSplits.targets`)
    check_output: Callable[[nn.Module, torch.Tensor, int, str], None]  # (model, sample images, classes, what) -> raises UserError
    objective: Callable[[nn.Module, TrainConfig], Objective]  # the supervised objective of a training stage
    augment: BatchAugment
    prediction_outputs: Callable[[int], int]  # channels of the prediction layer for K classes (what pruning spares)
    refused_augment: Callable[[Augment], list[str]] = lambda _cfg: []  # augment options this task cannot honour
    distillation: Callable[[nn.Module], Callable | None] = lambda _model: None  # a distillation's output terms (None: the classifier's KL at T)


TASKS: Registry[Task] = Registry("task")


def task_for_targets(targets: str) -> str:
    """The task whose data gives these labels ("classes" -> classification, "boxes" -> detection)."""
    return next(name for name in TASKS if TASKS.get(name).targets == targets)


def check_labels(task: Task, targets: str, description: str) -> None:
    """Refuse data whose labels the task cannot learn from or score; the fix names both ways out."""
    if targets != task.targets:
        raise DataError(f"{description}: its labels are {targets}, but the task {task.name} needs {task.targets}; "
                        f"set task: {task_for_targets(targets)} or use a source that gives {task.targets}")
