"""The data contract, checked when data is loaded and before any training.

Images: numbers (not strings, not pickled objects), [N,H,W] or [N,C,H,W], the same per-sample shape
in every split, finite. Labels: one integer per image (a float label is accepted only when it is a
whole number: 3.0 is class 3, 3.5 is an error, never silently truncated), within the classes.
Splits: not empty. Each failure is one `DataError` naming where the data came from, the array and
what was expected, so a bad file costs seconds, not a training run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.core.errors import DataError
from pipeline.data.registry import RawData, Streamed

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float


def images(x: np.ndarray, name: str, where: str) -> np.ndarray:
    """`x` as float32 [N,C,H,W] (uint8 scaled to [0, 1]), after the checks above."""
    if x.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{where}: {name} holds {_kind(x)}, not pixel values; store images as uint8 or float arrays")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{where}: {name} has shape {list(x.shape)}; images must be [N,H,W] (grey) or [N,C,H,W]")
    if len(x) == 0:
        raise DataError(f"{where}: {name} is empty; every split needs at least one image")
    finite = np.isfinite(x).all(axis=(1, 2, 3))  # per image
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(
            f"{where}: {name} has NaN or infinite pixel values in {len(bad)} image(s) (first: index {bad[0]}); "
            "fix or drop them before training"
        )
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def labels(y: np.ndarray, name: str, where: str, count: int | None = None) -> np.ndarray:
    """`y` as int64 [N]; `count` is the number of images it labels."""
    y = np.asarray(y)
    if y.dtype.kind not in NUMERIC_KINDS:
        raise DataError(
            f"{where}: {name} holds {_kind(y)}, not class indices; map each class to 0..K-1 and give the names as class_names"
        )
    if y.ndim != 1:
        raise DataError(f"{where}: {name} has shape {list(y.shape)}; labels are one class index per image, shape [N]")
    if y.dtype.kind == "f":
        fractional = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(fractional):
            raise DataError(
                f"{where}: {name} holds {len(fractional)} label(s) that are not whole numbers (first: {y[fractional[0]].item()!r} "
                f"at index {fractional[0]}); labels are class indices 0..K-1"
            )
    if count is not None and len(y) != count:
        raise DataError(f"{where}: {name} has {len(y)} labels for {count} images; give one label per image")
    return y.astype(np.int64)


def in_range(y: np.ndarray, name: str, num_classes: int, where: str) -> None:
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{where}: {name} labels must lie in 0..{num_classes - 1} ({num_classes} classes), found {y.min()}..{y.max()}")


def same_sample_shape(train: np.ndarray, test: np.ndarray, where: str) -> None:
    if train.shape[1:] != test.shape[1:]:
        raise DataError(
            f"{where}: training images are {list(train.shape[1:])} (C,H,W) but test images are {list(test.shape[1:])}; "
            "every split must have the same channels and size"
        )


def _kind(a: np.ndarray) -> str:
    return {"U": "strings", "S": "bytes", "O": "Python objects"}.get(a.dtype.kind, f"dtype {a.dtype}")


@dataclass
class CheckedArrays:
    """A source's arrays after the contract: float32 images [N,C,H,W], int64 labels, the class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


def raw_data(raw: RawData) -> CheckedArrays:
    """Every rule above on a source's arrays, in one call. A source without class names gets
    "0".."K-1" for the classes its labels reach, once its labels are known to be whole numbers."""
    where = raw.description
    x_train, x_test = images(raw.x_train, "x_train", where), images(raw.x_test, "x_test", where)
    same_sample_shape(x_train, x_test, where)
    y_train = labels(raw.y_train, "y_train", where, count=len(x_train))
    y_test = labels(raw.y_test, "y_test", where, count=len(x_test))
    class_names = raw.class_names
    if class_names is None:
        class_names = [str(i) for i in range(int(max(y_train.max(), y_test.max())) + 1)]  # both non-empty: `images` refused empty splits
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        in_range(y, name, len(class_names), where)
    return CheckedArrays(x_train, y_train, x_test, y_test, class_names)


def channel_stats(mean: list[float], std: list[float], channels: int, where: str) -> tuple[list[float], list[float]]:
    """Given normalisation: one value per channel (or one for all)."""
    if len(mean) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise DataError(f"{where}: data.mean/data.std give {len(mean)}/{len(std)} values for {channels}-channel images; give one per channel")
    return list(mean), list(std)


SAMPLED = 8  # items of each split read before training, to learn the sample shape and fail early


def item(value, name: str, index: int, classes: int, where: str, shape: tuple[int, ...] | None = None) -> tuple[torch.Tensor, int]:
    """One item of a streamed split, checked by the rules arrays get: (float image [C,H,W] of the
    split's shape, finite; an int label within the classes, never a float truncated to one)."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise DataError(f"{where}: {name} item {index} is a {type(value).__name__}; each item must be (image tensor [C,H,W], int label)")
    x, y = value
    item_image(x, name, index, where)
    label = y
    if (isinstance(y, torch.Tensor) and y.numel() == 1) or (isinstance(y, np.ndarray) and y.size == 1):
        label = y.item()
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise DataError(f"{where}: {name} item {index}'s label is {label!r}; labels are int class indices 0..{classes - 1}")
    if not 0 <= int(label) < classes:
        raise DataError(f"{where}: {name} item {index}'s label {int(label)} is outside 0..{classes - 1} ({classes} classes)")
    item_shape(x, name, index, where, shape)
    return x, int(label)


def item_image(x, name: str, index: int, where: str) -> None:
    """An item's image: a float tensor [C,H,W], finite."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        got = f"a {x.dim()}-D {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{where}: {name} item {index}'s image is {got}; images must be float tensors [C,H,W]")
    if not math.isfinite(float(x.sum(dtype=torch.float64))):  # one reduction: a third of isfinite().all()'s cost per item
        raise DataError(f"{where}: {name} item {index} has NaN or infinite pixel values")


def item_shape(x: torch.Tensor, name: str, index: int, where: str, shape: tuple[int, ...] | None) -> None:
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise DataError(f"{where}: {name} item {index} is {list(x.shape)} but the training images are {list(shape)} (C,H,W); every image must have one size")


BOX_EDGE_TOLERANCE = 1.0  # pixels a box may reach past the image (letterbox rounding)


def boxes_item(value, name: str, index: int, classes: int, where: str, shape: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One item of a detection split, checked: the image as `item` checks it, and its targets a
    float tensor [M, 5] whose rows are (class in 0..K-1, x1, y1, x2, y2 inside the image, x1 < x2,
    y1 < y2), or padding (class -1)."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise DataError(f"{where}: {name} item {index} is a {type(value).__name__}; each item must be (image tensor [C,H,W], targets [M, 5])")
    x, y = value
    item_image(x, name, index, where)
    item_shape(x, name, index, where, shape)
    if not isinstance(y, torch.Tensor) or y.dim() != 2 or y.shape[1] != 5 or not y.is_floating_point():
        got = f"a {list(y.shape)} {y.dtype} tensor" if isinstance(y, torch.Tensor) else type(y).__name__
        raise DataError(f"{where}: {name} item {index}'s targets are {got}; detection targets are a float tensor [M, 5]: class, x1, y1, x2, y2 (class -1 pads)")
    if not torch.isfinite(y).all():
        raise DataError(f"{where}: {name} item {index}'s targets hold NaN or infinite values")
    cls = y[:, 0]
    wrong = (cls != cls.round()) | (cls < -1) | (cls >= classes)
    if wrong.any():
        raise DataError(f"{where}: {name} item {index} has an object of class {cls[wrong][0].item():g}; classes are 0..{classes - 1} ({classes}), and -1 pads")
    left, top, right, bottom = y[cls >= 0, 1:].unbind(1)
    if ((right <= left) | (bottom <= top)).any():
        raise DataError(f"{where}: {name} item {index} has a box of zero area (x2 <= x1 or y2 <= y1); drop it or give its real size")
    height, width = x.shape[1:]
    edge = BOX_EDGE_TOLERANCE
    if ((left < -edge) | (top < -edge) | (right > width + edge) | (bottom > height + edge)).any():
        raise DataError(f"{where}: {name} item {index} has a box reaching outside its {width}x{height} image; clip boxes to the image")
    return x, y


ITEM_CHECKS = {"classes": item, "boxes": boxes_item}  # by what a source's labels are (`Streamed.targets`)


def sample_dataset(dataset, name: str, classes: int, where: str, shape: tuple[int, ...] | None = None, check=item) -> tuple[int, ...]:
    """A streamed split cannot be checked whole before training: its first items are read now, to
    fail in seconds and learn the sample shape; `Checked` checks every item as it is read later,
    so a bad label deep in the split stops the run by name at no extra pass. Returns [C,H,W]."""
    if len(dataset) == 0:
        raise DataError(f"{where}: the {name} split is empty; every split needs at least one image")
    for index in range(min(SAMPLED, len(dataset))):
        x, _ = check(dataset[index], name, index, classes, where, shape)
        shape = tuple(x.shape)  # the first item's, which `item` holds every later one to
    return tuple(shape)


class Checked(Dataset):
    """A user's (or a folder's) split whose every item is checked by `item` as it is read: picklable,
    so DataLoader workers check what they read, and an error names the split and the user's index."""

    def __init__(self, dataset: Dataset, name: str, classes: int, where: str, shape: tuple[int, ...], check=item):
        self.dataset, self.name, self.classes, self.where, self.shape, self.check = dataset, name, classes, where, shape, check

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.check(self.dataset[index], self.name, index, self.classes, self.where, self.shape)


@dataclass
class CheckedStreams:
    """A streamed source's splits, each item checked as it is read; `val` None when the source has none."""

    train: Checked
    val: Checked | None
    test: Checked
    shape: tuple[int, ...]  # [C,H,W] of every image


def streamed(source: Streamed) -> CheckedStreams:
    """The first items of each split checked now (`sample_dataset`), every item as it is read later (`Checked`)."""
    where, classes, check = source.description, len(source.class_names), ITEM_CHECKS[source.targets]
    shape = sample_dataset(source.train, "train", classes, where, check=check)
    sample_dataset(source.test, "test", classes, where, shape, check=check)
    if source.val is not None:
        sample_dataset(source.val, "val", classes, where, shape, check=check)
    checked = {name: Checked(d, name, classes, where, shape, check) for name, d in (("train", source.train), ("val", source.val), ("test", source.test)) if d is not None}
    return CheckedStreams(checked["train"], checked.get("val"), checked["test"], shape)
