"""The channel groups that nested widths shrink together, read from torch-pruning's dependency graph.

A group is every tensor dimension that must keep the same channels: a convolution's outputs, the
BatchNorm after it, the next layer's inputs, and across a residual connection every block that adds
into the same sum. A width keeps the leading `kept(size, width)` channels of every group, so the
network at that width is a consistent smaller network. Classifiers (layers whose outputs are the
classes) are never shrunk, and groups that pass through a channel shuffle keep their full width
(`ChannelMixing`, shared with pruning).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch_pruning as tp
from torch import nn

from pipeline.pruning.channel_mixing import ChannelMixing
from pipeline.pruning.pruner import ignored_layers


def kept(size: int, width: float) -> int:
    """Channels a group of `size` keeps at `width` (at least one)."""
    return max(1, round(size * width))


@contextlib.contextmanager
def channel_groups(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, ignore: list[str] = ()) -> Iterator[tuple[tp.DependencyGraph, list]]:
    """The model's dependency graph and its shrinkable groups (each with all its channels), valid while
    open; groups rooted at a module named in `ignore` keep their full width."""
    device, was_training = next(model.parameters()).device, model.training
    with ChannelMixing() as mixing:
        graph = tp.DependencyGraph().build_dependency(
            model, torch.zeros(1, *input_shape, device=device), forward_fn=mixing.forward_fn(lambda m, x: m(x))
        )
        model.train(was_training)  # tracing leaves the model in eval mode
        groups = [
            g for g in graph.get_all_groups(ignored_layers=ignored_layers(model, input_shape, list(ignore), num_classes), root_module_types=[nn.Conv2d, nn.Linear])
            if not any(_grouped(dep.target.module) for dep, _ in g)
        ]
        yield graph, groups


def _grouped(module: nn.Module) -> bool:
    """A grouped (not depthwise) convolution: its channels go in blocks, never one by one; left at full width."""
    return isinstance(module, nn.modules.conv._ConvNd) and 1 < module.groups < module.in_channels


def root(group) -> tuple[nn.Module, object]:
    """The module and pruning function a group was built from (to rebuild it with other indices)."""
    return group[0].dep.target.module, group[0].dep.handler


def group_name(graph: tp.DependencyGraph, group) -> str:
    return graph._module2name.get(root(group)[0], str(root(group)[0]))
