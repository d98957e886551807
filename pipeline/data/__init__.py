"""Data sources: each turns a `DataConfig` into train/val/test splits of normalised images.

A source returns raw arrays (`RawData`: the embedded set, Fashion-MNIST IDX, `.npz`), kept in memory,
or datasets it reads lazily (`Streamed`: image folders, a user's `Dataset`), read through DataLoader
workers. `load_data` does the rest the same way for both: the data contract, the validation split,
subsets, per-channel mean and std from the training split (a bounded sample of it when streamed).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch.utils.data import ConcatDataset, Dataset, Subset

from pipeline.core.errors import DataError
from pipeline.data import contract, embedded, factory, fashion_mnist, image_folder, npz  # noqa: F401  (register the sources)
from pipeline.data.registry import SOURCES, RawData, Streamed
from pipeline.data.splits import InMemory, Split

log = logging.getLogger("compress")
STATS_SAMPLE = 2048  # images read to estimate a streamed training split's per-channel mean and std


class DataConfig(BaseModel):
    """Where the data comes from and how it is split."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("embedded", description=f"a registered data source: {' | '.join(SOURCES.names())}")
    path: str | None = Field(None, description="directory (fashion-mnist) or file (npz); default: COMPRESS_DATA, then the system location")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of the training split held out for validation")
    train_on_validation: bool = Field(
        False, description="also train on the validation split: for a final run once every choice (epochs, learning rates, "
        "the recipe itself) was made on validation with this off. `validation_kept` of its samples stay out of training",
    )
    validation_kept: int = Field(
        1000, ge=0, description="train_on_validation: validation samples (at most a fifth of the split) kept out of training, so "
        "what later stages choose on validation (INT8 accuracy budgets, FP32 fallbacks, early-exit thresholds) is judged on "
        "unseen images; they become the validation split. 0 trains on all of it, and validation figures are then on seen data",
    )
    train_subset: int | None = Field(None, ge=10, description="use only this many training samples (tests, quick trials)")
    test_subset: int | None = Field(None, ge=10, description="use only this many test samples")
    batch_size: int = Field(128, ge=1)
    test_fraction: float = Field(0.2, gt=0, lt=1, description="image_folder with class folders directly under path: share of each class held out for test")
    factory: str | None = Field(None, description='dataset source: "package.module:function" returning {train, test, val (optional), class_names}')
    factory_kwargs: dict = Field(default_factory=dict, description="dataset source: keyword arguments for the factory")
    input_size: int | list[int] | None = Field(
        None, description="image_folder: resize the shorter side to this, then centre-crop to it (or to [height, width]); "
        "needed when the images' sizes differ"
    )
    channels: Literal[1, 3] | None = Field(None, description="image_folder: 1 (grey) or 3 (RGB); default: the first image's")
    skip_unreadable: bool = Field(False, description="image_folder: skip (and count) images that cannot be decoded instead of stopping")
    mean: list[float] | None = Field(None, description="per-channel mean to normalise with; default: measured on the training split")
    std: list[float] | None = Field(None, description="per-channel std to normalise with; default: measured on the training split")
    workers: int | None = Field(None, ge=0, description="DataLoader workers for streamed sources; default: up to 4, one per core")

    @model_validator(mode="after")
    def _stats_together(self) -> "DataConfig":
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together (one value per channel), or neither")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be positive (got {self.std})")
        return self

    @field_validator("input_size")
    @classmethod
    def _input_size(cls, size):
        sizes = [size] if isinstance(size, int) else size
        if sizes is not None and (len(sizes) not in (1, 2) or any(isinstance(s, bool) or s < 1 for s in sizes)):
            raise ValueError(f"input_size is one size in pixels (e.g. 32) or [height, width], each at least 1 (got {size!r})")
        return size[0] if isinstance(size, list) and len(size) == 1 else size

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES.names())}")
        return source


@dataclass
class DataSplits:
    """The three splits plus what an exported model must know about its input: the sample shape,
    the per-channel normalisation and how images are sized (`resize`, for the ONNX metadata)."""

    train: Split
    val: Split
    test: Split
    mean: list[float]
    std: list[float]
    class_names: list[str]
    batch_size: int
    description: str
    input_shape: tuple[int, int, int]
    resize: dict | None = None  # {"shorter_side": s, "center_crop": [h, w]} for image sources; None: used as stored

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_data(cfg: DataConfig, seed: int) -> DataSplits:
    """Read the source, check it, carve the validation split from train, subset, and normalise with
    train statistics."""
    source = SOURCES.get(cfg.source)(cfg)
    rng = np.random.default_rng(seed)
    if isinstance(source, RawData):
        return _in_memory(source, cfg, rng)
    return _streamed(source, cfg, rng)


def _holdout(count: int, cfg: DataConfig, rng: np.random.Generator, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices of a training split of `count` samples."""
    order = rng.permutation(count)
    n_val = max(1, int(round(count * cfg.val_fraction)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) == 0:
        raise DataError(f"{where}: {count} training image(s) leave none to train on after holding out val_fraction={cfg.val_fraction}")
    return train_idx, val_idx


def _merge_validation(val_count: int, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the validation split that join training, positions that stay the validation split).
    `validation_kept` stay, at most a fifth of the split and at least one; with `validation_kept: 0`
    the whole split is both: trained on, and still scored (on seen images)."""
    positions = np.arange(val_count)
    if cfg.validation_kept == 0:
        return positions, positions
    kept = max(1, min(cfg.validation_kept, val_count // 5))
    if kept < cfg.validation_kept:
        log.warning(
            f"data.validation_kept: {cfg.validation_kept} asked, but at most a fifth of the {val_count}-image validation split is kept "
            f"back, so {kept} are: set validation_kept to {kept} or less to silence this, or raise val_fraction to keep more"
        )
    return positions[kept:], positions[:kept]


def trained_on_validation_note(cfg: DataConfig, val_count: int) -> str:
    """What the data line of the log and report adds when training also used the validation split."""
    if not cfg.train_on_validation:
        return ""
    if cfg.validation_kept == 0:
        return " (validation split also trained on: validation figures are on seen images)"
    return f" (validation split also trained on, but {val_count} of its images kept back, unseen, as the validation split)"


def _subsets(train_idx, val_idx, test_count: int, cfg: DataConfig, rng: np.random.Generator):
    if cfg.train_subset is not None:
        train_idx = train_idx[: cfg.train_subset]
        val_idx = val_idx[: max(10, int(cfg.train_subset * cfg.val_fraction))]
    test_idx = np.arange(test_count)
    if cfg.test_subset is not None:
        test_idx = rng.permutation(test_count)[: cfg.test_subset]
    return train_idx, val_idx, test_idx


def _in_memory(raw: RawData, cfg: DataConfig, rng: np.random.Generator) -> DataSplits:
    where = raw.description
    x_train, x_test = contract.images(raw.x_train, "x_train", where), contract.images(raw.x_test, "x_test", where)
    contract.same_sample_shape(x_train, x_test, where)
    y_train = contract.labels(raw.y_train, "y_train", where, count=len(x_train))
    y_test = contract.labels(raw.y_test, "y_test", where, count=len(x_test))
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        contract.in_range(y, name, len(raw.class_names), where)
    train_idx, val_idx = _holdout(len(y_train), cfg, rng, where)
    train_idx, val_idx, test_idx = _subsets(train_idx, val_idx, len(y_test), cfg, rng)
    if cfg.train_on_validation:
        joins, stays = _merge_validation(len(val_idx), cfg)
        train_idx, val_idx = np.concatenate([train_idx, val_idx[joins]]), val_idx[stays]

    channels = x_train.shape[1]
    if cfg.mean is not None:
        mean, std = contract.channel_stats(cfg.mean, cfg.std, channels, where)
    else:
        mean = x_train[train_idx].mean(axis=(0, 2, 3)).astype(np.float64).tolist()
        std = [s or 1.0 for s in x_train[train_idx].std(axis=(0, 2, 3)).astype(np.float64).tolist()]
    shift, scale = np.array(mean, dtype=np.float32)[:, None, None], np.array(std, dtype=np.float32)[:, None, None]

    def split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
        return Split(InMemory(torch.from_numpy(((x[idx] - shift) / scale).astype(np.float32)), torch.from_numpy(y[idx])))

    return DataSplits(
        train=split(x_train, y_train, train_idx),  # with train_on_validation, val's samples too, but those kept back
        val=split(x_train, y_train, val_idx),
        test=split(x_test, y_test, test_idx),
        mean=mean,
        std=std,
        class_names=raw.class_names,
        batch_size=cfg.batch_size,
        description=raw.description + trained_on_validation_note(cfg, len(val_idx)),
        input_shape=tuple(x_train.shape[1:]),
    )


class Normalised(Dataset):
    """A dataset's images shifted and scaled per channel, as the exported model will be fed."""

    def __init__(self, dataset: Dataset, mean: list[float], std: list[float]):
        self.dataset = dataset
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return (x - self.mean) / self.std, y


def _streamed(source: Streamed, cfg: DataConfig, rng: np.random.Generator) -> DataSplits:
    where = source.description
    classes = len(source.class_names)
    shape = contract.sample_dataset(source.train, "train", classes, where)
    contract.sample_dataset(source.test, "test", classes, where, shape)
    source_train, source_test = (contract.Checked(d, name, classes, where, shape) for d, name in ((source.train, "train"), (source.test, "test")))
    if source.val is None:  # held out of the training split, as for arrays
        train_idx, val_idx = _holdout(len(source.train), cfg, rng, where)
        val_source = source_train
    else:
        contract.sample_dataset(source.val, "val", classes, where, shape)
        train_idx, val_idx, val_source = np.arange(len(source.train)), np.arange(len(source.val)), contract.Checked(source.val, "val", classes, where, shape)
    train_idx, val_idx, test_idx = _subsets(train_idx, val_idx, len(source.test), cfg, rng)
    train, val, test = Subset(source_train, train_idx.tolist()), Subset(val_source, val_idx.tolist()), Subset(source_test, test_idx.tolist())
    if cfg.train_on_validation:
        joins, stays = _merge_validation(len(val_idx), cfg)
        train = ConcatDataset([train, Subset(val_source, val_idx[joins].tolist())])
        val = Subset(val_source, val_idx[stays].tolist())
    workers = cfg.workers if cfg.workers is not None else min(4, os.cpu_count() or 1)
    if cfg.mean is not None:
        mean, std = contract.channel_stats(cfg.mean, cfg.std, shape[0], where)
    else:
        mean, std = channel_statistics(Split(train, workers), rng)

    def split(dataset: Dataset) -> Split:
        return Split(Normalised(dataset, mean, std), workers)

    return DataSplits(
        train=split(train), val=split(val), test=split(test), mean=mean, std=std, class_names=source.class_names,
        batch_size=cfg.batch_size, description=where + trained_on_validation_note(cfg, len(val)), input_shape=shape, resize=source.resize,
    )


def channel_statistics(train: Split, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over a bounded, evenly random sample of the training split: reading
    every image of a large folder to normalise it would cost a full epoch."""
    count = min(len(train), STATS_SAMPLE)
    picked = torch.from_numpy(np.sort(rng.choice(len(train), size=count, replace=False)))
    total = total_sq = None
    pixels = 0
    for x, _, _ in train.batches(256, picked):
        x = x.double()
        per = x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))
        total = per[0] if total is None else total + per[0]
        total_sq = per[1] if total_sq is None else total_sq + per[1]
        pixels += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / pixels
    std = (total_sq / pixels - mean * mean).clamp_min(0).sqrt()
    return mean.tolist(), [s if s > 0 else 1.0 for s in std.tolist()]
