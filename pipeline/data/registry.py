"""The data-source registry: each source turns a `DataConfig` into raw arrays (`RawData`);
`pipeline.data.load_data` does the rest the same way for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from pipeline.core.registry import Registry

if TYPE_CHECKING:
    from pipeline.data import DataConfig


@dataclass
class RawData:
    """Arrays as a source reads them: images [N,H,W] or [N,C,H,W], integer labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    description: str


SOURCES: Registry[Callable[["DataConfig"], RawData]] = Registry("data source")
