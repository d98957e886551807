"""User dataset factories for the `dataset` source tests."""

import torch
from torch.utils.data import Dataset


class Counting(Dataset):
    """Random RGB images whose reads are counted, to prove nothing reads the whole split up front."""

    reads = 0

    def __init__(self, count: int, size: int = 12, seed: int = 0):
        self.count, self.size, self.seed = count, size, seed

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        Counting.reads += 1
        g = torch.Generator().manual_seed(self.seed * 100_003 + index)
        label = index % 3
        image = torch.rand(3, self.size, self.size, generator=g) * 0.5 + label * 0.25
        return image, label


def three_classes(train: int = 300, test: int = 90):
    return {"train": Counting(train), "test": Counting(test, seed=1), "class_names": ["a", "b", "c"]}


def not_datasets():
    return {"train": [1, 2, 3], "test": Counting(10), "class_names": ["a"]}


def no_names():
    return {"train": Counting(10), "test": Counting(10)}


def tuple_of_three():
    return Counting(10), None, Counting(10)


def mislabelled_test(train: int = 1500):
    """Embedded Fashion-MNIST images: `train` for training, the next 500 for validation, and a test
    split made of those same validation images with every label moved to the next class. A model
    that is right on validation is wrong on almost every test sample, so anything that reads the
    test split where it should read validation chooses differently, or records figures near 0."""
    from torch.utils.data import TensorDataset

    from pipeline.data.embedded import load_embedded

    raw = load_embedded(None)
    x = torch.from_numpy(raw.x_train[: train + 500]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(raw.y_train[: train + 500]).long()
    val_x, val_y = x[train:], y[train:]
    return {
        "train": TensorDataset(x[:train], y[:train]),
        "val": TensorDataset(val_x, val_y),
        "test": TensorDataset(val_x, (val_y + 1) % 10),
        "class_names": raw.class_names,
    }


class LateBadLabel(Dataset):
    """Good items, except one label far past the items checked before training."""

    def __init__(self, count: int, bad_index: int, bad_label):
        self.count, self.bad_index, self.bad_label = count, bad_index, bad_label

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        image, label = Counting(self.count)[index]
        return image, self.bad_label if index == self.bad_index else label


def float_label_late(train: int = 200):
    return {"train": LateBadLabel(train, train - 3, 1.5), "test": Counting(30, seed=1), "class_names": ["a", "b", "c"]}


def label_out_of_range_late(train: int = 200):
    return {"train": LateBadLabel(train, train - 3, 7), "test": Counting(30, seed=1), "class_names": ["a", "b", "c"]}


class LateNaN(LateBadLabel):
    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        if index == self.bad_index:
            image = image.clone()
            image[0, 3, 3] = float("nan")
        return image, label


def nan_pixels_late(train: int = 200):
    return {"train": LateNaN(train, train - 3, 1), "test": Counting(30, seed=1), "class_names": ["a", "b", "c"]}


def numbered_arrays(train: int = 200, test: int = 60) -> dict:
    """Grey 4x4 images whose every pixel is the image's own number (train 0.., test 1000..), labels
    number % 4: the same samples as arrays (for an .npz) and as datasets (`numbered`)."""
    import numpy as np

    x_train = np.repeat(np.arange(train, dtype=np.float32), 16).reshape(train, 1, 4, 4)
    x_test = np.repeat(np.arange(1000, 1000 + test, dtype=np.float32), 16).reshape(test, 1, 4, 4)
    return {"x_train": x_train, "y_train": np.arange(train) % 4, "x_test": x_test, "y_test": np.arange(test) % 4, "class_names": np.array(list("abcd"))}


def numbered(train: int = 200, test: int = 60) -> dict:
    from torch.utils.data import TensorDataset

    a = numbered_arrays(train, test)
    return {
        "train": TensorDataset(torch.from_numpy(a["x_train"]), torch.from_numpy(a["y_train"])),
        "test": TensorDataset(torch.from_numpy(a["x_test"]), torch.from_numpy(a["y_test"])), "class_names": list("abcd"),
    }
