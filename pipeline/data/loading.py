"""From a data source to the three normalised splits, the same way for every source.

A source returns raw arrays (`RawData`: the embedded set, Fashion-MNIST IDX, `.npz`), kept in memory,
or datasets it reads lazily (`Streamed`: image folders, a user's `Dataset`), read through DataLoader
workers. Both go through one contract call (`contract.raw_data` / `contract.streamed`), one plan of
indices (`index_plan.plan_indices`) and one normalisation (`normalisation.py`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from pipeline.data import contract
from pipeline.data.config import DataConfig
from pipeline.data.index_plan import plan_indices, trained_on_validation_note
from pipeline.data.normalisation import Normalised, array_statistics, channel_statistics
from pipeline.data.registry import SOURCES, RawData, Streamed
from pipeline.data.splits import DataSplits, InMemory, Split


def load_data(cfg: DataConfig, seed: int) -> DataSplits:
    """Read the source, check it, carve the validation split from train, subset, and normalise with
    train statistics."""
    source = SOURCES.get(cfg.source)(cfg)
    rng = np.random.default_rng(seed)
    if isinstance(source, RawData):
        return in_memory(source, cfg, rng)
    return streamed(source, cfg, rng)


def in_memory(raw: RawData, cfg: DataConfig, rng: np.random.Generator) -> DataSplits:
    checked = contract.raw_data(raw)
    plan = plan_indices(len(checked.y_train), None, len(checked.y_test), cfg, rng, raw.description)
    train_idx = np.concatenate([plan.train, plan.val_also_trains])  # the validation split is part of the training arrays
    channels = checked.x_train.shape[1]
    if cfg.mean is not None:
        mean, std = contract.channel_stats(cfg.mean, cfg.std, channels, raw.description)
    else:
        mean, std = array_statistics(checked.x_train[train_idx])
    shift, scale = np.array(mean, dtype=np.float32)[:, None, None], np.array(std, dtype=np.float32)[:, None, None]

    def split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
        return Split(InMemory(torch.from_numpy(((x[idx] - shift) / scale).astype(np.float32)), torch.from_numpy(y[idx])))

    return DataSplits(
        train=split(checked.x_train, checked.y_train, train_idx),
        val=split(checked.x_train, checked.y_train, plan.val),
        test=split(checked.x_test, checked.y_test, plan.test),
        mean=mean,
        std=std,
        class_names=checked.class_names,
        batch_size=cfg.batch_size,
        description=raw.description + trained_on_validation_note(cfg, len(plan.val)),
        input_shape=tuple(checked.x_train.shape[1:]),
    )


def streamed(source: Streamed, cfg: DataConfig, rng: np.random.Generator) -> DataSplits:
    where = source.description
    checked = contract.streamed(source)
    val_source = checked.val if checked.val is not None else checked.train  # held out of the training split, as for arrays
    plan = plan_indices(len(checked.train), None if checked.val is None else len(checked.val), len(checked.test), cfg, rng, where)
    train: Dataset = Subset(checked.train, plan.train.tolist())
    if len(plan.val_also_trains):
        train = ConcatDataset([train, Subset(val_source, plan.val_also_trains.tolist())])
    val, test = Subset(val_source, plan.val.tolist()), Subset(checked.test, plan.test.tolist())
    workers = cfg.workers if cfg.workers is not None else min(4, os.cpu_count() or 1)
    if cfg.mean is not None:
        mean, std = contract.channel_stats(cfg.mean, cfg.std, checked.shape[0], where)
    else:
        mean, std = channel_statistics(Split(train, workers), rng)

    def split(dataset: Dataset) -> Split:
        return Split(Normalised(dataset, mean, std), workers)

    return DataSplits(
        train=split(train), val=split(val), test=split(test), mean=mean, std=std, class_names=source.class_names,
        batch_size=cfg.batch_size, description=where + trained_on_validation_note(cfg, len(val)), input_shape=checked.shape, resize=source.resize,
        targets=source.targets,
    )
