"""Which samples of each source go to train, validation and test: one plan for arrays kept in memory
and for streamed datasets alike, so both hold out, subset and merge the same samples for a seed.

The random draws happen in one fixed order (the hold-out permutation, then the test subset), so a
seed picks the same samples whichever way the data is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.config import DataConfig

log = logging.getLogger("compress")


@dataclass(frozen=True)
class IndexPlan:
    train: np.ndarray  # into the training source
    val: np.ndarray  # into the validation source: the training source itself when the data has no validation split
    test: np.ndarray  # into the test source
    val_also_trains: np.ndarray  # into the validation source: samples that train too (train_on_validation)


def plan_indices(train_count: int, val_count: int | None, test_count: int, cfg: DataConfig, rng: np.random.Generator, where: str) -> IndexPlan:
    """`val_count` None: the validation split is held out of the training source (`val_fraction`)."""
    if val_count is None:
        train_idx, val_idx = holdout(train_count, cfg, rng, where)
    else:
        train_idx, val_idx = np.arange(train_count), np.arange(val_count)
    if cfg.train_subset is not None:
        train_idx = train_idx[: cfg.train_subset]
        val_idx = val_idx[: max(10, int(cfg.train_subset * cfg.val_fraction))]
    test_idx = np.arange(test_count)
    if cfg.test_subset is not None:
        test_idx = rng.permutation(test_count)[: cfg.test_subset]
    joins = val_idx[:0]
    if cfg.train_on_validation:
        joins_at, stays_at = merge_validation(len(val_idx), cfg)
        joins, val_idx = val_idx[joins_at], val_idx[stays_at]
    return IndexPlan(train_idx, val_idx, test_idx, joins)


def holdout(count: int, cfg: DataConfig, rng: np.random.Generator, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices of a training split of `count` samples."""
    order = rng.permutation(count)
    n_val = max(1, int(round(count * cfg.val_fraction)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) == 0:
        raise DataError(f"{where}: {count} training image(s) leave none to train on after holding out val_fraction={cfg.val_fraction}")
    return train_idx, val_idx


def merge_validation(val_count: int, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
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
