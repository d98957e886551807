"""The model's classifier, found by one rule for every room that must spare it (pruning, nested
widths) or read it (self-distillation's hints, SLA's joint head, Dual-Head KD): the last
`nn.Linear` or `nn.Conv2d` to run in a forward pass with one output per class. A layer that merely
has as many channels as there are classes, earlier in the network, is not it: pruning it would not
remove a class, so it is pruned like any other."""

from __future__ import annotations

import torch
from torch import nn


def outputs(module: nn.Module) -> int | None:
    """How many outputs a Linear or Conv2d computes; None for anything else."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    return None


@torch.no_grad()
def classifier_name(model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> str | None:
    """The name of `model`'s classifier (see above), or None when no such layer runs."""
    ran: list[str] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, _o, name=name: ran.append(name))
        for name, m in model.named_modules()
        if outputs(m) == num_classes
    ]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return ran[-1] if ran else None
