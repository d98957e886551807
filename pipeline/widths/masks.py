"""The model run at a width without changing it: the trailing channels of every group are zeroed.

Training all widths in one set of weights needs each step to run the network at several widths.
While `WidthMasks` is open, every layer that produces a group's channels (convolution, linear,
BatchNorm) has its trailing channels multiplied by zero, so the layers after it see exactly what the
sliced network would compute (`slicing.slice_width` checks that they agree). BatchNorm statistics
are per channel, so the zeroed channels do not disturb the leading ones.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch_pruning as tp
from torch import nn

from pipeline.widths.groups import kept


class WidthMasks:
    """Forward hooks on the model's producing layers; `at(width)` runs it at that width."""

    def __init__(self, graph: tp.DependencyGraph, groups: list):
        self.width = 1.0
        self._producers: list[tuple[nn.Module, int, torch.Tensor]] = []  # (layer, channel dim, its channel index for root channel r)
        for group in groups:
            for dep, idxs in group:
                module = dep.target.module
                if graph.is_out_channel_pruning_fn(dep.handler) and isinstance(module, (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)):
                    self._producers.append((module, -1 if isinstance(module, nn.Linear) else 1, torch.tensor([int(i) for i in idxs])))
        self._handles: list = []
        self._cache: dict[tuple[int, float], torch.Tensor] = {}

    def __enter__(self) -> "WidthMasks":
        for module, dim, channels in self._producers:
            self._handles.append(module.register_forward_hook(self._hook(module, dim, channels)))
        return self

    def __exit__(self, *_exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @contextlib.contextmanager
    def at(self, width: float) -> Iterator[None]:
        previous, self.width = self.width, width
        try:
            yield
        finally:
            self.width = previous

    def runner(self, model: nn.Module):
        """`run(width, x)`: `model` (the one these hooks sit on) on `x` at `width`."""

        def run(width: float, x: torch.Tensor) -> torch.Tensor:
            with self.at(width):
                return model(x)

        return run

    def _hook(self, module: nn.Module, dim: int, channels: torch.Tensor):
        def zero_trailing(_module, _inputs, output: torch.Tensor) -> torch.Tensor | None:
            if self.width >= 1:
                return None
            key = (id(module), self.width)
            mask = self._cache.get(key)
            if mask is None or mask.device != output.device:
                mask = torch.ones(output.shape[dim], device=output.device)
                mask[channels[kept(len(channels), self.width):].to(output.device)] = 0
                self._cache[key] = mask
            shape = [1] * output.dim()
            shape[dim] = -1
            return output * mask.view(shape)

        return zero_trailing
