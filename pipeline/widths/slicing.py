"""A width made into a physically smaller model: the trailing channels of every group removed.

The sliced model is what a device runs: real smaller tensors, no masks. It must compute what the
masked model computed at that width; `slice_width` checks this on real inputs and names the first
layer where they part (an activation with f(0) != 0, or a normalisation across channels, breaks the
equivalence that masking relies on). Its BatchNorm statistics are then measured again at its own
width (`recalibrate_batchnorm`): during nested training every width shared one set of running
statistics, which fits none of them.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn

from pipeline.core.errors import StageError
from pipeline.widths.groups import channel_groups, kept, root
from pipeline.widths.masks import WidthMasks

AGREEMENT = 1e-4  # largest |logit difference| between the sliced and the masked model, relative to the logits' scale


def slice_width(model: nn.Module, width: float, input_shape: tuple[int, ...], num_classes: int, ignore: list[str], check: torch.Tensor) -> nn.Module:
    """A copy of `model` holding only the leading channels of each group at `width`, checked on `check` inputs."""
    sliced = copy.deepcopy(model).cpu().eval()
    remove_trailing(sliced, width, input_shape, num_classes, ignore)
    reference = copy.deepcopy(model).cpu().eval()
    with channel_groups(reference, input_shape, num_classes, ignore) as (graph, groups), WidthMasks(graph, groups) as masks, masks.at(width):
        with torch.no_grad(), _ZeroWatch(reference) as watch:
            expected = reference(check)
    with torch.no_grad():
        got = sliced(check)
    difference = (got - expected).abs().max().item()
    if watch.culprit or difference > AGREEMENT * max(1.0, expected.abs().max().item()):  # the culprit alone: these inputs may hide it
        culprit = f"{watch.culprit} turns zeroed channels into non-zero ones" if watch.culprit else "a layer between the shrinkable channels does not treat a zeroed channel as absent"
        raise StageError(
            f"nested: at width {width:g} the sliced model is not the masked one (logits differ by up to {difference:.3g}): {culprit} "
            "(an activation with f(0) != 0, or a normalisation across channels). Name the convolution or linear layer before it "
            "in nested.ignore to keep those channels at full width."
        )
    return sliced


def remove_trailing(model: nn.Module, width: float, input_shape: tuple[int, ...], num_classes: int, ignore: list[str]) -> None:
    """Remove, in place, the trailing channels of every group that `width` does not keep (no check)."""
    with channel_groups(model, input_shape, num_classes, ignore) as (graph, groups):
        for group in groups:
            size = len(group[0].idxs)
            trailing = list(range(kept(size, width), size))
            if trailing:
                module, handler = root(group)
                graph.get_pruning_group(module, handler, trailing).prune()


class _ZeroWatch:
    """The first parameter-free layer whose input has an all-zero channel that its output does not (a sigmoid, say)."""

    def __init__(self, model: nn.Module):
        self.culprit: str | None = None
        self._leaves = [(n, m) for n, m in model.named_modules() if not list(m.children()) and not list(m.parameters(recurse=False))]
        self._handles: list = []

    def __enter__(self) -> "_ZeroWatch":
        for name, module in self._leaves:
            self._handles.append(module.register_forward_hook(self._watch(name)))
        return self

    def __exit__(self, *_exc) -> None:
        for handle in self._handles:
            handle.remove()

    def _watch(self, name: str):
        def hook(_module, inputs, output) -> None:
            x = inputs[0] if inputs else None
            if self.culprit or not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor) or x.shape != output.shape or x.dim() < 2:
                return
            dims = [d for d in range(x.dim()) if d != 1]
            zero_in, zero_out = x.abs().amax(dims) == 0, output.abs().amax(dims) == 0
            if (zero_in & ~zero_out).any():
                self.culprit = f"{name} ({type(_module).__name__})"

        return hook


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """BatchNorm running statistics measured afresh (a plain average over `batches`), the model left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch counts the same
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()
