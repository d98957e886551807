"""Augmentations declared in the recipe, applied to a whole batch on the training device.

They work on normalised tensors of any size and channel count: geometry by one `grid_sample` per
batch (flip, shift, random-resized crop), pixel changes (brightness/contrast jitter) on the
de-normalised values, and random erasing to the dataset's mean. Every random draw comes from the
loop's generator, so a seed reproduces a run. Mixing samples (mixup, cutmix) changes the labels
too, so it goes through `mixed`, which returns the second labels and their weight with the images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.training.objectives import Mix


class Augment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flip: bool = Field(True, description="random horizontal flip")
    shift: int | None = Field(
        None, ge=0, le=32, description="random translation of up to this many pixels (shifted-in pixels are black); "
        "default: 1/14 of the image's shorter side (2 px at 28x28, 5 at 64x64, 16 at 224x224)"
    )
    resized_crop: list[float] | None = Field(
        None, description="random-resized crop: [min, max] share of the image's area kept (aspect 3/4..4/3), resized back; e.g. [0.6, 1.0]"
    )
    color_jitter: float = Field(0.0, ge=0, le=0.5, description="brightness and contrast each scaled by a random factor in 1 ± this")
    erasing: float = Field(0.0, ge=0, le=1, description="probability of erasing one random rectangle (2-20 % of the area) to the mean")
    mixup: float = Field(0.0, ge=0, le=4, description="mixup: blend each image with another, weight ~ Beta(a, a); 0 off (0.2 is usual)")
    cutmix: float = Field(0.0, ge=0, le=4, description="cutmix: paste a box of another image, area ~ Beta(a, a); 0 off (1.0 is usual); with mixup, one of the two per batch")

    @field_validator("resized_crop")
    @classmethod
    def _area_range(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not (len(value) == 2 and 0 < value[0] <= value[1] <= 1):
            raise ValueError(f"give [min, max] with 0 < min <= max <= 1 (got {value})")
        return value


def augment(x: torch.Tensor, cfg: Augment, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """`mean`/`std`: the normalisation, broadcastable to x ([1, C, 1, 1])."""
    n, _, h, w = x.shape
    background = -mean / std  # black, normalised
    if cfg.resized_crop is not None:
        x = _resized_crop(x, cfg.resized_crop, background, generator)
    if cfg.flip:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    shift = default_shift(h, w) if cfg.shift is None else cfg.shift
    if shift:
        shifts = torch.randint(-shift, shift + 1, (n, 2), generator=generator).to(x)
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2] = shifts[:, 0] * 2 / w
        theta[:, 1, 2] = shifts[:, 1] * 2 / h
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x - background, grid, mode="nearest", padding_mode="zeros", align_corners=False) + background
    if cfg.color_jitter:
        x = color_jittered(x, cfg.color_jitter, mean, std, generator)
    if cfg.erasing:
        x = x.clone()
        for i in torch.nonzero(torch.rand(n, generator=generator) < cfg.erasing).flatten().tolist():
            area = h * w * float(torch.empty(1).uniform_(0.02, 0.2, generator=generator))
            aspect = math.exp(float(torch.empty(1).uniform_(math.log(0.3), math.log(3.3), generator=generator)))
            eh, ew = min(h, max(1, round(math.sqrt(area * aspect)))), min(w, max(1, round(math.sqrt(area / aspect))))
            top = int(torch.randint(0, h - eh + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - ew + 1, (1,), generator=generator))
            x[i, :, top : top + eh, left : left + ew] = 0  # the dataset mean, normalised
    return x


def color_jittered(x: torch.Tensor, amount: float, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness and contrast of each image scaled by a random factor in 1 ± `amount`, on the
    de-normalised pixels (a detector's boxes stay where they are: `pipeline/tasks/box_augment.py`)."""
    n = x.shape[0]
    pixels = x * std + mean
    brightness = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * amount
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * amount
    grey = pixels.mean(dim=(1, 2, 3), keepdim=True)
    pixels = ((pixels * brightness.to(x.device) - grey) * contrast.to(x.device) + grey).clamp(0, 1)
    return (pixels - mean) / std


def _resized_crop(x: torch.Tensor, area_range: list[float], background: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per sample: a box of a random share of the area and aspect 3/4..4/3 at a random place,
    resized (bilinear) back to the full size."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(*area_range, generator=generator)
    aspect = torch.exp(torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator))
    sx, sy = torch.sqrt(area * aspect).clamp(max=1), torch.sqrt(area / aspect).clamp(max=1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = sx, sy
    theta[:, 0, 2] = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sx)
    theta[:, 1, 2] = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sy)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background


def default_shift(height: int, width: int) -> int:
    """A translation that means the same at every size: 1/14 of the shorter side, at least a pixel."""
    return max(1, round(min(height, width) / 14))


def mixed(x: torch.Tensor, y: torch.Tensor, cfg: Augment, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
    """Mixup or cutmix over the batch (each image with a random other one of it), or nothing."""
    kinds = [k for k in ("mixup", "cutmix") if getattr(cfg, k) > 0]
    if not kinds or len(x) < 2:
        return x, None
    kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
    alpha = getattr(cfg, kind)
    lam = float(np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=generator))).beta(alpha, alpha))
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    if kind == "mixup":
        return lam * x + (1 - lam) * x[partner], Mix(y[partner], lam)
    h, w = x.shape[2:]
    bh, bw = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    top, left = int(torch.randint(0, h - bh + 1, (1,), generator=generator)), int(torch.randint(0, w - bw + 1, (1,), generator=generator))
    x = x.clone()
    x[:, :, top : top + bh, left : left + bw] = x[partner, :, top : top + bh, left : left + bw]
    return x, Mix(y[partner], 1 - bh * bw / (h * w))  # the weight of the pixels each image kept
