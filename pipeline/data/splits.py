"""A split is a `torch.utils.data.Dataset` of (normalised image [C,H,W], int label), read in batches.

Everything downstream (training, evaluation, calibration, parity, bundles) reads a split through
`batches` or `take`, never by indexing a whole tensor, so a split may live in memory (the array
sources: fast batch slicing) or be read from files by DataLoader workers (image folders, a user's
Dataset) without any stage holding it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.core.errors import DataError


class InMemory(Dataset):
    """Normalised tensors already in memory; `dataset[list_of_indices]` returns a whole batch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


@dataclass
class Split:
    dataset: Dataset
    workers: int = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(images, labels, sample indices) in batches, in `order` (a permutation; default: as
        stored). In-memory splits slice their tensors; others go through a DataLoader with workers."""
        order = torch.arange(len(self)) if order is None else order
        if isinstance(self.dataset, InMemory):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                x, y = self.dataset[idx]
                yield x, y, idx
            return
        loader = DataLoader(
            self.dataset, batch_size=batch_size, sampler=order.tolist(), num_workers=self.workers,
            persistent_workers=False, pin_memory=False,
        )
        starts = range(0, len(order), batch_size)
        try:
            for start, (x, y) in zip(starts, loader):
                y = torch.as_tensor(y)
                yield x, y if y.is_floating_point() else y.to(torch.int64), order[start : start + batch_size]  # float: detection targets [n, M, 5]
        except DataError as e:  # raised in a worker: keep the message, drop the worker's traceback text
            message = str(e).rsplit("DataError: ", 1)[-1].strip()
            raise DataError(message) from None

    def take(self, n: int | None = None, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n` samples (all when None) as two tensors: for calibration, parity checks and
        bundles, which need a bounded sample, never the whole of a large split."""
        count = len(self) if n is None else min(n, len(self))
        xs, ys = [], []
        for x, y, _ in self.batches(batch_size, torch.arange(count)):
            xs.append(x)
            ys.append(y)
        if not xs:
            raise DataError("the split is empty")
        return torch.cat(xs), torch.cat(ys)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.dataset[0][0].shape)


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
    resize: dict | None = None  # {"shorter_side": s, "center_crop": [h, w]} or {"letterbox": [h, w]} for image sources; None: used as stored
    targets: str = "classes"  # "classes": one int label per image; "boxes": detection targets [M, 5] per image (class, x1, y1, x2, y2; class -1 pads)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
