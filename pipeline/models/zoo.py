"""Small models for small inputs (28x28 grey, 32x32 colour).

All of them are plain conv/BN/ReLU graphs that torch-pruning's dependency graph can trace
and onnxruntime can fuse (Conv+BN folded, Conv+ReLU fused, QLinearConv after INT8).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.registry import ZOO


def conv_bn_relu(cin: int, cout: int, stride: int = 1, kernel: int = 3, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Classifier(nn.Module):
    """features -> global average pool -> linear: one layout for the whole zoo."""

    def __init__(self, features: nn.Module, width: int, num_classes: int):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.features(x))))


@ZOO.register("tiny_cnn")
def tiny_cnn(
    in_channels: int = 1, num_classes: int = 10, widths: tuple[int, ...] = (8, 16, 32, 32), strides: tuple[int, ...] = (1, 2, 1, 2)
) -> nn.Module:
    """Four conv-BN-ReLU blocks: ~15.5 k params, ~1.6 M MACs at 28x28 (90.7 % on Fashion-MNIST in 15 epochs)."""
    if len(widths) != len(strides):
        raise ValueError(f"tiny_cnn: widths {widths} and strides {strides} must have the same length")
    layers, cin = [], in_channels
    for w, s in zip(widths, strides):
        layers.append(conv_bn_relu(cin, w, stride=s))
        cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, cout, stride), conv_bn_relu(cout, cout, relu=False))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else conv_bn_relu(cin, cout, stride, kernel=1, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


def cifar_resnet(depth: int, in_channels: int, num_classes: int, widths: tuple[int, int, int]) -> nn.Module:
    """He et al.'s CIFAR ResNet: depth = 6n + 2, three stages of n basic blocks."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    layers, cin = [conv_bn_relu(in_channels, widths[0])], widths[0]
    for stage, w in enumerate(widths):
        for block in range(n):
            layers.append(BasicBlock(cin, w, stride=2 if stage > 0 and block == 0 else 1))
            cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)


@ZOO.register("resnet20")
def resnet20(in_channels: int = 1, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> nn.Module:
    """~272 k params, ~31 M MACs at 28x28."""
    return cifar_resnet(20, in_channels, num_classes, widths)


@ZOO.register("resnet8")
def resnet8(in_channels: int = 1, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> nn.Module:
    return cifar_resnet(8, in_channels, num_classes, widths)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            conv_bn_relu(cin, hidden, kernel=1),
            conv_bn_relu(hidden, hidden, stride, groups=hidden),
            conv_bn_relu(hidden, cout, kernel=1, relu=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.body(x)
        return x + out if self.residual else out


@ZOO.register("mobilenetv2")
def mobilenetv2(
    in_channels: int = 1,
    num_classes: int = 10,
    stem: int = 16,
    blocks: tuple[tuple[int, int, int, int], ...] = ((16, 1, 1, 1), (24, 2, 2, 4), (32, 2, 2, 4), (64, 2, 2, 4)),
    head: int = 128,
) -> nn.Module:
    """MobileNetV2 for small inputs; `blocks` rows are (out channels, repeats, first stride, expansion)."""
    layers, cin = [conv_bn_relu(in_channels, stem)], stem
    for cout, repeats, stride, expand in blocks:
        for i in range(repeats):
            layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    layers.append(conv_bn_relu(cin, head, kernel=1))
    return Classifier(nn.Sequential(*layers), head, num_classes)


def separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1: about 9/cout + 1/9 of a full 3x3 conv's weights."""
    return nn.Sequential(conv_bn_relu(cin, cin, stride, groups=cin), conv_bn_relu(cin, cout, kernel=1))


@ZOO.register("ds_cnn")
def ds_cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    stem: int = 16,
    widths: tuple[int, ...] = (32, 32, 64, 96),
    strides: tuple[int, ...] = (2, 1, 2, 1),
    width: float = 1.0,
) -> nn.Module:
    """A full 3x3 stem, then depthwise-separable blocks: more depth and width per parameter than
    tiny_cnn (~12.6 k params, ~1.3 M MACs at 28x28 by default). `width` scales the stem and every
    block (rounded, at least 4 channels): one number a search can vary against a parameter budget."""
    if len(widths) != len(strides):
        raise ValueError(f"ds_cnn: widths {widths} and strides {strides} must have the same length")
    if width <= 0:
        raise ValueError(f"ds_cnn: width {width} must be above 0 (1.0 keeps the widths as given)")
    stem, widths = max(4, round(stem * width)), [max(4, round(c * width)) for c in widths]
    layers, cin = [conv_bn_relu(in_channels, stem)], stem
    for w, s in zip(widths, strides):
        layers.append(separable(cin, w, s))
        cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channels of `groups` groups (ShuffleNet): a fixed permutation, written the way
    torchvision writes it (a grouped view, a transpose, a view back)."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split the channels in half (`chunk`), transform one half (1x1,
    depthwise 3x3, 1x1), concatenate, shuffle. Stride 2: both halves come from the whole input,
    one through a depthwise-strided branch, so the width doubles."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride == 1 and cin != cout:
            raise ValueError(f"a stride-1 shuffle unit keeps its width (got {cin} -> {cout})")
        self.shortcut = (
            nn.Sequential(conv_bn_relu(cin, cin, stride, groups=cin, relu=False), conv_bn_relu(cin, half, kernel=1)) if stride > 1 else None
        )
        branch_in = cin if stride > 1 else cin // 2
        self.branch = nn.Sequential(
            conv_bn_relu(branch_in, half, kernel=1),
            conv_bn_relu(half, half, stride, groups=half, relu=False),
            conv_bn_relu(half, half, kernel=1),
        )

    def forward(self, x):
        if self.shortcut is None:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat([kept, self.branch(transformed)], 1)
        else:
            out = torch.cat([self.shortcut(x), self.branch(x)], 1)
        return channel_shuffle(out)


@ZOO.register("shufflenetv2")
def shufflenetv2(
    in_channels: int = 1,
    num_classes: int = 10,
    stem: int = 24,
    widths: tuple[int, ...] = (48, 96, 192),
    repeats: tuple[int, ...] = (3, 7, 3),
    head: int = 512,
) -> nn.Module:
    """ShuffleNetV2 (channel split + channel shuffle) for small inputs, ~250 k params at 28x28.

    Pruning keeps every channel that passes through a shuffle and prunes inside the branches
    (`pipeline/pruning/channel_mixing.py` says why)."""
    if len(widths) != len(repeats):
        raise ValueError(f"shufflenetv2: widths {widths} and repeats {repeats} must have the same length")
    layers, cin = [conv_bn_relu(in_channels, stem)], stem
    for width, repeat in zip(widths, repeats):
        layers.append(ShuffleUnit(cin, width, 2))
        layers += [ShuffleUnit(width, width, 1) for _ in range(repeat)]
        cin = width
    layers.append(conv_bn_relu(cin, head, kernel=1))
    return Classifier(nn.Sequential(*layers), head, num_classes)
