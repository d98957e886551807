"""`classification`: one class per image, scored by top-1 (or the recipe's metric) on the logits."""

from __future__ import annotations

from pipeline.models.contract import check_model
from pipeline.tasks.base import TASKS, Task
from pipeline.training.augment import augment, mixed
from pipeline.training.objectives import supervised_objective


def _augment(x, y, cfg, mean, std, generator):
    x = augment(x, cfg, mean, std, generator)
    x, mix = mixed(x, y, cfg, generator)
    return x, y, mix


CLASSIFICATION = TASKS.register("classification")(Task(
    name="classification",
    metric="top1",
    targets="classes",
    check_output=check_model,
    objective=lambda model, cfg: supervised_objective(model, cfg.label_smoothing),
    augment=_augment,
    prediction_outputs=lambda classes: classes,
))
