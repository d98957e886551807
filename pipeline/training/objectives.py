"""Training objectives: what the loop asks of every step. An objective takes a `Batch` and returns
named loss terms; the loop sums them for the gradient and logs each one per epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass
class Batch:
    """One training step as an objective sees it. `idx` are the samples' positions in the training
    split (progressive self-distillation keeps per-sample predictions across epochs)."""

    x: torch.Tensor
    y: torch.Tensor
    idx: torch.Tensor
    logits: torch.Tensor
    epoch: int
    epochs: int


Objective = Callable[[Batch], dict[str, torch.Tensor]]


def cross_entropy(label_smoothing: float = 0.0) -> Objective:
    """The default objective: cross-entropy of the model's output against the labels."""
    return lambda b: {"ce": F.cross_entropy(b.logits, b.y, label_smoothing=label_smoothing)}


def combine(*objectives: Objective) -> Objective:
    """Several objectives as one; their term names must differ."""

    def total(batch: Batch) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for objective in objectives:
            terms.update(objective(batch))
        return terms

    return total
