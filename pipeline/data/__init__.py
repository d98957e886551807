"""Data sources: each turns a `DataConfig` into normalised train/val/test tensors.

Sources return raw arrays; `load_data` does the rest in one place (validation split,
subsets, normalisation), so every source behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.core.errors import DataError
from pipeline.data import contract, embedded, fashion_mnist, npz  # noqa: F401  (register the sources)
from pipeline.data.registry import SOURCES


class DataConfig(BaseModel):
    """Where the data comes from and how it is split."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("embedded", description=f"a registered data source: {' | '.join(SOURCES.names())}")
    path: str | None = Field(None, description="directory (fashion-mnist) or file (npz); default: COMPRESS_DATA, then the system location")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of the training split held out for validation")
    train_subset: int | None = Field(None, ge=10, description="use only this many training samples (tests, quick trials)")
    test_subset: int | None = Field(None, ge=10, description="use only this many test samples")
    batch_size: int = Field(128, ge=1)

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES.names())}")
        return source


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DataSplits:
    """Normalised float32 tensors [N,C,H,W] plus what an exported model must know about them."""

    train: Split
    val: Split
    test: Split
    mean: float
    std: float
    class_names: list[str]
    batch_size: int
    description: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_data(cfg: DataConfig, seed: int) -> DataSplits:
    """Read the source, carve the validation split from train, subset, and normalise with train statistics."""
    raw = SOURCES.get(cfg.source)(cfg)
    where = raw.description
    x_train, x_test = contract.images(raw.x_train, "x_train", where), contract.images(raw.x_test, "x_test", where)
    contract.same_sample_shape(x_train, x_test, where)
    y_train = contract.labels(raw.y_train, "y_train", where, count=len(x_train))
    y_test = contract.labels(raw.y_test, "y_test", where, count=len(x_test))
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        contract.in_range(y, name, len(raw.class_names), where)

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_train))
    n_val = max(1, int(round(len(order) * cfg.val_fraction)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) == 0:
        raise DataError(f"{where}: {len(order)} training image(s) leave none to train on after holding out val_fraction={cfg.val_fraction}")
    if cfg.train_subset is not None:
        train_idx = train_idx[: cfg.train_subset]
        val_idx = val_idx[: max(10, int(cfg.train_subset * cfg.val_fraction))]
    test_idx = np.arange(len(y_test))
    if cfg.test_subset is not None:
        test_idx = rng.permutation(len(y_test))[: cfg.test_subset]

    mean = float(x_train[train_idx].mean())
    std = float(x_train[train_idx].std()) or 1.0

    def split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
        xs = torch.from_numpy(((x[idx] - mean) / std).astype(np.float32))
        return Split(xs, torch.from_numpy(y[idx]))

    return DataSplits(
        train=split(x_train, y_train, train_idx),
        val=split(x_train, y_train, val_idx),
        test=split(x_test, y_test, test_idx),
        mean=mean,
        std=std,
        class_names=raw.class_names,
        batch_size=cfg.batch_size,
        description=raw.description,
    )
