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
