"""What a model computes, seen from outside: every submodule's output shape in call order, the
feature maps among them and the last one. Heads, feature distillation and
self-distillation's hints choose their layers from this, so any model works without code edits."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.core.errors import StageError


@torch.no_grad()
def trace_outputs(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """(module name, output shape) for every submodule, in the order their forwards finish."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, out, name=name: seen.append((name, tuple(out.shape))) if isinstance(out, torch.Tensor) else None)
        for name, m in model.named_modules()
        if name
    ]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen


def feature_maps(trace: list[tuple[str, tuple[int, ...]]]) -> dict[str, tuple[int, ...]]:
    """Modules whose output is a 4-D feature map (N, C, H, W) with some spatial extent (a global
    pool's 1x1 output is a vector in disguise): the places a head can go."""
    return {name: shape for name, shape in trace if len(shape) == 4 and shape[2] * shape[3] > 1}


def final_features(trace: list[tuple[str, tuple[int, ...]]]) -> tuple[str, tuple[int, ...]]:
    """The last feature map the backbone computes (what feature hints and feature distillation match)."""
    maps = list(feature_maps(trace).items())
    if not maps:
        raise StageError("the model computes no 4-D feature map (N, C, H, W); heads and feature matching need one")
    return maps[-1]
