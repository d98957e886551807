"""Per-channel normalisation: the statistics of a training split, and a dataset fed through them.

Statistics come from the training split only (validation and test are normalised with them, as the
device will be): all of it for arrays in memory, a bounded random sample when streamed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.data.splits import Split

STATS_SAMPLE = 2048  # images read to estimate a streamed training split's per-channel mean and std


def array_statistics(x_train: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of training images [N,C,H,W] (a flat channel's std is 1)."""
    mean = x_train.mean(axis=(0, 2, 3)).astype(np.float64).tolist()
    std = [s or 1.0 for s in x_train.std(axis=(0, 2, 3)).astype(np.float64).tolist()]
    return mean, std


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
