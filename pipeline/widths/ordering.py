"""Channels sorted by importance inside each group, so the leading channels are the ones worth keeping.

The permutation is applied to every tensor dimension of the group (a convolution's outputs, its
BatchNorm, the next layer's inputs, every branch of a residual sum), so the network computes exactly
the same function afterwards; only which channel sits where changes. Nested training then teaches
the leading channels to work alone.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from pipeline.core.errors import StageError
from pipeline.pruning.pruner import IMPORTANCE
from pipeline.widths.groups import group_name


def order_channels(graph: tp.DependencyGraph, groups: list, importance: str = "magnitude") -> int:
    """Sort every group's channels by `importance`, most important first; returns how many groups moved."""
    score = IMPORTANCE[importance]()
    moved = 0
    for group in groups:
        size = len(group[0].idxs)
        scores = score(group)
        if scores is None or len(scores) != size:  # channels scored in blocks: leave the order as it is
            continue
        order = torch.argsort(scores.detach().cpu(), descending=True, stable=True)
        if torch.equal(order, torch.arange(size)):
            continue
        permute(graph, group, order)
        moved += 1
    return moved


def permute(graph: tp.DependencyGraph, group, order: torch.Tensor) -> None:
    """Put the group's channel `order[r]` at position r, in every tensor that holds the group's channels."""
    size = len(order)
    done: set[tuple[int, str, int]] = set()
    for dep, idxs in group:
        module = dep.target.module
        if not isinstance(module, nn.Module):
            continue
        for name, dim in channel_tensors(module, graph.is_out_channel_pruning_fn(dep.handler), lambda: group_name(graph, group)):
            if (id(module), name, dim) in done:
                continue
            done.add((id(module), name, dim))
            tensor = getattr(module, name)
            layer = torch.tensor([int(i) for i in idxs]).view(size, -1)  # root channel r -> its indices in this tensor (several after a flatten)
            index = torch.arange(tensor.shape[dim])
            index[layer.flatten()] = layer[order].flatten()
            tensor.data = tensor.data.index_select(dim, index.to(tensor.device))


def channel_tensors(module: nn.Module, out: bool, where) -> list[tuple[str, int]]:
    """(tensor name, dimension) of the module's tensors that index the group's channels."""
    if not any(True for _ in module.parameters(recurse=False)) and not any(True for _ in module.buffers(recurse=False)):
        return []
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return [(n, 0) for n in ("weight", "bias", "running_mean", "running_var") if getattr(module, n, None) is not None]
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        if out:
            return [(n, 0) for n in ("weight", "bias") if getattr(module, n, None) is not None]
        if isinstance(module, nn.Linear) or module.groups == 1:
            return [("weight", 1)]
        return []  # depthwise: its inputs are its outputs, moved with them
    raise StageError(
        f"nested: cannot reorder the channels of a {type(module).__name__} in the channel group of {where()}: "
        "only convolutions, linear layers and BatchNorm are supported inside a shrinkable group. "
        "Name its layers in nested.ignore to keep that group at full width."
    )
