"""`tiny_det`: a small anchor-free detector (FCOS-style, one output level) for a Raspberry Pi.

A plain conv-BN-ReLU backbone to stride 16, its stride-16 features brought up and added to the
stride-8 ones (a two-level feature pyramid folded into one output level), a shared 3x3 tower, and
ONE 1x1 prediction conv with 5 + K channels per location: box distances (left, top, right, bottom),
centre-ness, K class logits. One prediction layer is what pruning and widths spare (the rule of
`models/classifier.py`, with 5 + K outputs), and one output tensor is what every exporter, parity
check and runtime takes.

The graph returns [N, A, 5 + K] over the A = (H/8)(W/8) locations, row-major: the boxes already
decoded to input pixels (x1, y1, x2, y2 = point -/+ softplus(distance) * 8), then the raw logits. Box
arithmetic is cheap in the graph; thresholds and NMS stay outside it (`devices/on_device/detections.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.registry import ZOO
from pipeline.models.zoo import conv_bn_relu

STRIDE = 8
PRIOR = 0.01  # the initial class probability (focal loss: no class flood at the start)
START_DISTANCE = 2.0  # initial box half-size in strides


def box_outputs(num_classes: int) -> int:
    """Channels of the prediction layer: 4 distances, centre-ness, one logit per class."""
    return 5 + num_classes


class TinyDetector(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, int, int, int], tower: int):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(conv_bn_relu(in_channels, w1, stride=2), conv_bn_relu(w1, w2, stride=2), conv_bn_relu(w2, w2))
        self.stage8 = nn.Sequential(conv_bn_relu(w2, w3, stride=2), conv_bn_relu(w3, w3))
        self.stage16 = nn.Sequential(conv_bn_relu(w3, w4, stride=2), conv_bn_relu(w4, w4))
        self.lateral8 = conv_bn_relu(w3, tower, kernel=1, relu=False)
        self.lateral16 = conv_bn_relu(w4, tower, kernel=1, relu=False)
        self.tower = nn.Sequential(conv_bn_relu(tower, tower), conv_bn_relu(tower, tower))
        self.predict = nn.Conv2d(tower, box_outputs(num_classes), 1)
        self.stride = STRIDE  # the detection task reads the grid from here
        with torch.no_grad():
            self.predict.bias.zero_()
            self.predict.bias[:4] = math.log(math.expm1(START_DISTANCE))  # softplus(b) = START_DISTANCE
            self.predict.bias[5:] = -math.log((1 - PRIOR) / PRIOR)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f8 = self.stage8(self.stem(x))
        f16 = self.stage16(f8)
        up = F.interpolate(self.lateral16(f16), size=f8.shape[2:], mode="nearest")
        raw = self.predict(self.tower(F.relu(self.lateral8(f8) + up)))
        n, c, h, w = raw.shape
        raw = raw.permute(0, 2, 3, 1).reshape(n, h * w, c)
        ys = (torch.arange(h, dtype=raw.dtype, device=raw.device) + 0.5) * STRIDE
        xs = (torch.arange(w, dtype=raw.dtype, device=raw.device) + 0.5) * STRIDE
        points = torch.stack([xs.repeat(h), ys.repeat_interleave(w)], dim=1)  # [A, 2], row-major like `raw`
        distances = F.softplus(raw[:, :, :4]) * STRIDE
        boxes = torch.cat([points - distances[:, :, :2], points + distances[:, :, 2:]], dim=2)
        return torch.cat([boxes, raw[:, :, 4:]], dim=2)


@ZOO.register("tiny_det")
def tiny_det(in_channels: int = 1, num_classes: int = 10, widths: tuple[int, int, int, int] = (16, 32, 64, 96), tower: int = 64,
             width: float = 1.0) -> nn.Module:
    """Anchor-free detector, outputs at stride 8 (~0.26 M params, ~30 M MACs at 96x96 by default);
    `width` scales every layer (one number a search can vary against a budget)."""
    if width <= 0:
        raise ValueError(f"tiny_det: width {width} must be above 0 (1.0 keeps the widths as given)")
    if len(widths) != 4:
        raise ValueError(f"tiny_det: widths are four channel counts (stride 2, 4, 8, 16), got {widths}")
    scaled = tuple(max(4, round(c * width)) for c in widths)
    return TinyDetector(in_channels, num_classes, scaled, max(4, round(tower * width)))
