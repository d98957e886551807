"""User factories that break the model contract in the ways users' models do (for test_contract.py)."""

import torch
from torch import nn

from pipeline.models.zoo import tiny_cnn


def raises():
    raise RuntimeError("weights server unreachable")


class Pair(nn.Module):
    def __init__(self, as_dict: bool = False):
        super().__init__()
        self.net, self.as_dict = tiny_cnn(), as_dict

    def forward(self, x):
        logits = self.net(x)
        return {"logits": logits, "aux": logits} if self.as_dict else (logits, logits)


def returns_tuple():
    return Pair()


def returns_dict():
    return Pair(as_dict=True)


def five_classes():
    return tiny_cnn(num_classes=5)


def rgb_only():
    return tiny_cnn(in_channels=3)


def not_a_tensor():
    class Words(nn.Module):
        def forward(self, x):
            return "cat"

    return Words()


def fine():
    return tiny_cnn()


_ = torch
