"""Channel shuffles and channel chunks, which torch-pruning's dependency graph misreads.

Why a ShuffleNet-style model could not be pruned (measured with torch-pruning 1.6.1, torch 2.13):

1. A channel shuffle is `x.view(N, g, C/g, H, W).transpose(1, 2).reshape(N, C, H, W)`: a fixed
   permutation of channels. torch-pruning reads every reshape between feature maps as a *flatten*
   (C channels -> C*H*W features) and maps each pruned channel to `stride` indices on the other
   side. Through a chain of shuffle units those index lists multiply at every unit, so building a
   pruning group grows without bound (the reported out-of-memory kill), or the channel inference
   returns 0 and the build dies with a division by zero. Pruning *across* a shuffle is also wrong
   in itself: after removing channels the same view permutes them differently.
2. `x.chunk(2, dim=1)` records its size as `_saved_split_size` and its input as
   `_saved_self_sym_sizes`, which torch-pruning does not look for; it falls back to inferring the
   sizes from the graph and, next to a concat, gets them wrong (e.g. [192, 96] for a 192-channel
   input), which later indexes past the end of a list.

So, while a pruner built through `ChannelMixing` is alive: the reshapes that mix channels (seen in
the traced forward itself, by their real input and output shapes) get no index mapping, every group
that reaches one is left unpruned (the channels that pass through a shuffle keep their count and
order; the layers inside each branch are pruned as usual), and chunk sizes are read from the
recorded shapes. Models without such ops are built exactly as before.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode
from torch_pruning import ops
from torch_pruning.dependency import graph as tp_graph
from torch_pruning.dependency import index_mapping, shape_infer

RESHAPES = {torch.Tensor.view, torch.Tensor.reshape, torch.reshape, torch.Tensor.flatten, torch.flatten, torch.Tensor.unflatten}


def mixes_channels(x: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether reshaping `x` into `out` moves values between channels of a feature map: anything but
    keeping (N, C, ...) or flattening (N, C, H, W) into (N, C) / (N, C*H*W) for a classifier; and
    any way back from a grouped (N, g, C/g, H, W) view to a feature map."""
    if x.dim() == 4:
        n, c, h, w = x.shape
        return not ((out.dim() == 4 and out.shape[1] == c) or (out.dim() == 2 and out.shape[1] in (c, c * h * w)))
    return x.dim() > 4 and out.dim() == 4


class _Recorder(TorchFunctionMode):
    """Notes the autograd node of every channel-mixing reshape in one forward pass."""

    def __init__(self, found: list):
        super().__init__()
        self.found = found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in RESHAPES and args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
            if out.grad_fn is not None and mixes_channels(args[0], out):
                self.found.append(out.grad_fn)
        return out


class ChannelMixing:
    """Use as a context manager around a torch-pruning pruner's whole life, and trace through
    `forward_fn(...)`. `barriers` is how many channel-mixing reshapes the trace found."""

    def __init__(self) -> None:
        self.found: list = []  # autograd nodes of the traced forward (held, so identity stays valid)
        self._saved: dict[str, Any] = {}

    @property
    def barriers(self) -> int:
        return len(self.found)

    def forward_fn(self, forward: Callable) -> Callable:
        def traced(model, inputs):
            with _Recorder(self.found):
                return forward(model, inputs)

        return traced

    def _is_barrier(self, node) -> bool:
        return any(node.grad_fn is g for g in self.found)

    def __enter__(self) -> "ChannelMixing":
        original_mapping = index_mapping.update_reshape_index_mapping
        original_shapes = shape_infer.init_shape_information
        original_groups = tp_graph.DependencyGraph.get_all_groups
        self._saved = {"mapping": original_mapping, "shapes": original_shapes, "groups": original_groups}

        def update_reshape_index_mapping(graph, node):
            if not self._is_barrier(node):
                original_mapping(graph, node)

        def init_shape_information(graph):
            original_shapes(graph)
            for module, node in graph.module2node.items():
                if node.type == ops.OPTYPE.SPLIT:
                    _chunk_sizes(module, node)

        def get_all_groups(graph, *args, **kwargs):
            barriers = {m for m, node in graph.module2node.items() if self._is_barrier(node)}
            for group in original_groups(graph, *args, **kwargs):
                if not any(dep.source.module in barriers or dep.target.module in barriers for dep, _ in group):
                    yield group

        index_mapping.update_reshape_index_mapping = update_reshape_index_mapping
        shape_infer.init_shape_information = init_shape_information
        tp_graph.DependencyGraph.get_all_groups = get_all_groups
        return self

    def __exit__(self, *_exc) -> None:
        index_mapping.update_reshape_index_mapping = self._saved["mapping"]
        shape_infer.init_shape_information = self._saved["shapes"]
        tp_graph.DependencyGraph.get_all_groups = self._saved["groups"]
        self.found.clear()


def _chunk_sizes(module, node) -> None:
    """`chunk` along channels: sizes from the recorded input shape and chunk size."""
    grad_fn = node.grad_fn
    size, dim, shape = (getattr(grad_fn, a, None) for a in ("_saved_split_size", "_saved_dim", "_saved_self_sym_sizes"))
    if size is None or dim != 1 or shape is None or len(shape) < 2:
        return
    channels = int(shape[1])
    sizes = [min(size, channels - start) for start in range(0, channels, size)]
    if len(sizes) != len(node.outputs):
        return
    module.split_sizes = sizes
    module.offsets = [0]
    for s in sizes:
        module.offsets.append(module.offsets[-1] + s)
