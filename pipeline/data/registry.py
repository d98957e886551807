"""The data-source registry: each source turns a `DataConfig` into raw arrays kept in memory
(`RawData`) or datasets read lazily (`Streamed`); `pipeline.data.loading` does the rest the same
way for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import numpy as np
from torch.utils.data import Dataset

from pipeline.core.registry import Registry


@dataclass
class RawData:
    """Arrays as a source reads them: images [N,H,W] or [N,C,H,W], integer labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] | None  # None: "0".."K-1" for the classes the labels reach (the contract fills them in)
    description: str


@dataclass
class Streamed:
    """Datasets of (float image tensor [C,H,W], int label), not yet normalised, read item by item.
    `val` None: the validation split is carved from `train`. `resize`: how images were sized, for the
    exported model's metadata."""

    train: Dataset
    test: Dataset
    val: Dataset | None
    class_names: list[str]
    description: str
    resize: dict | None = None
    targets: str = "classes"  # what each item's label is: "classes" (an int) or "boxes" (a detection target [M, 5], pipeline/data/coco.py)


SOURCES: Registry[Callable[..., Union[RawData, Streamed]]] = Registry("data source")  # each takes the recipe's DataConfig
