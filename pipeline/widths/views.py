"""Narrow widths trained as smaller networks whose weights are views of the full network's.

A masked pass (`masks.py`) computes the whole network and zeroes the trailing channels, so a step at
a quarter of the width costs as much as a full one, and a nested step (three widths) three full
steps. Once the channels are ordered, in ordinary networks what a width keeps of every tensor is
its leading block along each dimension: the first k output channels of a convolution, the first k
input channels of the next one. So a width can run a smaller copy of the network (a skeleton,
sliced once by the dependency graph) with its parameters swapped, at each call, for those leading
slices of the full parameters (`torch.func.functional_call`; BatchNorm's running statistics too,
read but never moved, as in the masked pass). Slices are views: the gradient lands in the full
weights where the masked pass would put it (zero in the trailing channels), and the pass costs
what the smaller network costs.

Whether every kept block is leading is checked, not assumed: the skeleton is cut from a copy whose
every tensor holds distinct random values, and each of its tensors must equal the leading slice of
the copy's. Where one does not (channels concatenated from two branches keep a block of each),
`width_views` names that tensor and the caller trains masked.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.func import functional_call

from pipeline.widths.slicing import remove_trailing, slice_width

Slices = tuple[slice, ...]


class NotLeading(Exception):
    """A width keeps channels of some tensor that are not its leading ones."""


class WidthViews:
    """`views(width, x)`: the model at `width` (a listed width below 1) on `x`, its weights views of the model's."""

    def __init__(self, model: nn.Module, skeletons: dict[float, tuple[nn.Module, dict[str, Slices]]]):
        self.model = model
        self.skeletons = skeletons

    def __call__(self, width: float, x: torch.Tensor) -> torch.Tensor:
        skeleton, slices = self.skeletons[width]
        if next(skeleton.buffers(), x).device != x.device:
            skeleton.to(x.device)
        skeleton.train(self.model.training)
        tensors = itertools.chain(self.model.named_parameters(), self.model.named_buffers())
        return functional_call(skeleton, {name: tensor[slices[name]] for name, tensor in tensors if name in slices}, (x,))


def width_views(model: nn.Module, widths: list[float], input_shape: tuple[int, ...], num_classes: int, ignore: list[str], check: torch.Tensor) -> WidthViews:
    """Views for every width below 1, each slice first checked to compute what the masked model
    computes (`slice_width`: a StageError for a model that cannot be sliced at all); NotLeading
    when some width keeps channels that are not a leading block."""
    skeletons = {}
    for width in (w for w in widths if w < 1):
        slice_width(model, width, input_shape, num_classes, ignore, check)
        skeletons[width] = _skeleton(model, width, input_shape, num_classes, ignore)
    return WidthViews(model, skeletons)


def _skeleton(model: nn.Module, width: float, input_shape: tuple[int, ...], num_classes: int, ignore: list[str]) -> tuple[nn.Module, dict[str, Slices]]:
    probe = copy.deepcopy(model).cpu()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in itertools.chain(probe.parameters(), probe.buffers()):
            if tensor.is_floating_point():  # distinct values, positive (as a running variance must be)
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    full = {**dict(probe.named_parameters()), **dict(probe.named_buffers())}
    skeleton = copy.deepcopy(probe)
    remove_trailing(skeleton, width, input_shape, num_classes, ignore)
    for norm in skeleton.modules():
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            norm.momentum = 0.0  # a narrow pass reads the running statistics (views too) but never moves them
    slices: dict[str, Slices] = {}
    for name, tensor in itertools.chain(skeleton.named_parameters(), skeleton.named_buffers()):
        whole = full[name]
        leading = tuple(slice(0, n) for n in tensor.shape)
        if tensor.dim() != whole.dim() or any(n > m for n, m in zip(tensor.shape, whole.shape)) or not torch.equal(whole[leading], tensor):
            raise NotLeading(f"at width {width:g}, {name} keeps channels that are not its leading ones")
        if tensor.is_floating_point():  # parameters and running statistics; counters stay the skeleton's own
            slices[name] = leading
    return skeleton, slices
