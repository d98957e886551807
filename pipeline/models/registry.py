"""The model zoo's registry (timm's `register_model`): `@ZOO.register("name")` on a factory taking
`in_channels`, `num_classes` and its own keyword arguments."""

from __future__ import annotations

from typing import Callable

from torch import nn

from pipeline.core.registry import Registry

ZOO: Registry[Callable[..., nn.Module]] = Registry("model")
