"""The training step of nested widths: the sandwich rule with in-place distillation (US-Nets).

Every step trains the full width from the labels, and the smallest width plus `sampled` of the
widths in between from the full width's own prediction (detached: the widest network teaches,
it is not pulled toward its students). A narrow pass is the smaller network on views of the full
weights where the model allows (`views.py`), the masked full network otherwise (`masks.py`).
Training the two extremes every step is what keeps every width in between working; the full
width teaching the others is what lets a narrow one beat the same network trained alone. The narrower passes leave BatchNorm's running statistics alone: they
belong to the full width, which the loop validates; each slice gets its own afterwards
(`slicing.recalibrate_batchnorm`).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.training.objectives import Batch, Objective

NarrowPass = Callable[[float, torch.Tensor], torch.Tensor]  # (width, inputs) -> logits: `WidthViews`, or `WidthMasks.runner`


def sandwich(
    model: nn.Module, at_width: NarrowPass, widths: list[float], sampled: int, temperature: float, label_smoothing: float, seed: int, weight: float = 1.0
) -> Objective:
    """Terms `ce` (full width, labels) and `inplace_kd` (each narrower width against the full width's
    softened prediction, times T², summed over the widths of the step, times `weight`)."""
    smallest = min(widths)
    between = [w for w in sorted(set(widths)) if smallest < w < 1]
    generator = torch.Generator().manual_seed(seed)  # the same draws on every rank of a torchrun run

    def objective(batch: Batch) -> dict[str, torch.Tensor]:
        teacher = F.softmax(batch.logits.detach() / temperature, dim=1)
        picks = [smallest] + [between[i] for i in torch.randperm(len(between), generator=generator)[:sampled].tolist()]
        kd = batch.logits.new_zeros(())
        with running_statistics_frozen(model):
            for width in picks:
                student = at_width(width, batch.x)
                kd = kd + F.kl_div(F.log_softmax(student / temperature, dim=1), teacher, reduction="batchmean") * temperature**2
        return {"ce": batch.ce(batch.logits, label_smoothing), "inplace_kd": weight * kd}

    return objective


@contextlib.contextmanager
def running_statistics_frozen(model: nn.Module) -> Iterator[None]:
    """BatchNorm still normalises with the batch's statistics, but its running averages do not move."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
