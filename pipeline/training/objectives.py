"""Training objectives: what the loop asks of every step. An objective takes a `Batch` and returns
named loss terms; the loop sums them for the gradient and logs each one per epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from pipeline.models.heads import HeadedModel


@dataclass
class Mix:
    """Mixup/cutmix: each image is `lam` of its own and `1 - lam` of the sample whose label is `y`."""

    y: torch.Tensor
    lam: float


@dataclass
class Batch:
    """One training step as an objective sees it. `idx` are the samples' positions in the training
    split (progressive self-distillation keeps per-sample predictions across epochs). With `mix`,
    the images are blends of two samples: every label term goes through `ce` or `targets`, which
    weigh both labels."""

    x: torch.Tensor
    y: torch.Tensor
    idx: torch.Tensor
    logits: torch.Tensor
    epoch: int
    epochs: int
    mix: Mix | None = None

    def ce(self, logits: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy of `logits` (the model's or a head's) against the labels, mixed as the images were."""
        loss = F.cross_entropy(logits, self.y, label_smoothing=label_smoothing)
        if self.mix is None:
            return loss
        return self.mix.lam * loss + (1 - self.mix.lam) * F.cross_entropy(logits, self.mix.y, label_smoothing=label_smoothing)

    def targets(self, classes: int, label_smoothing: float = 0.0) -> torch.Tensor:
        """The labels as (smoothed, mixed) probability vectors."""
        onehot = F.one_hot(self.y, classes).float()
        if self.mix is not None:
            onehot = self.mix.lam * onehot + (1 - self.mix.lam) * F.one_hot(self.mix.y, classes).float()
        return onehot * (1 - label_smoothing) + label_smoothing / classes


Objective = Callable[[Batch], dict[str, torch.Tensor]]


def cross_entropy(label_smoothing: float = 0.0) -> Objective:
    """The default objective: cross-entropy of the model's output against the labels."""
    return lambda b: {"ce": b.ce(b.logits, label_smoothing)}


def combine(*objectives: Objective) -> Objective:
    """Several objectives as one; their term names must differ."""

    def total(batch: Batch) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for objective in objectives:
            terms.update(objective(batch))
        return terms

    return total


def deep_supervision(model: HeadedModel, label_smoothing: float):
    """Cross-entropy of every head against the labels, at the head's weight (a training objective)."""

    def terms(batch) -> dict[str, torch.Tensor]:
        return {
            f"ce_{name}": model.specs[name].weight * batch.ce(logits, label_smoothing)
            for name, logits in model.head_logits.items()
        }

    return terms


def supervised_objective(model: HeadedModel, label_smoothing: float):
    """Cross-entropy on the backbone plus deep supervision of its heads: training without a teacher."""
    return combine(cross_entropy(label_smoothing), deep_supervision(model, label_smoothing))
