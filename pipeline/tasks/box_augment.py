"""Augmentations for detection: the recipe's `augment` section applied to images AND their boxes.

Geometry is one affine map per image (horizontal flip, a zoom in from `resized_crop`'s area range,
a shift of up to `shift` pixels), applied to the pixels by `grid_sample` and to each box's corners
by the same map, so a box keeps covering its object. A box pushed partly off the canvas is clipped;
one left with under `KEPT_AREA` of its area, or under 2 px a side, is dropped (its row becomes
padding). Brightness/contrast jitter changes pixels only. Random erasing, mixup and cutmix would
hide or blend objects without saying where: a detection recipe that asks for them is refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.training.augment import Augment, color_jittered, default_shift

KEPT_AREA = 0.3  # share of a box's area that must stay on the canvas for it to remain an object
MIN_SIDE = 2.0  # px
REFUSED = ("erasing", "mixup", "cutmix")


def refused(cfg: Augment) -> list[str]:
    """The options set in `cfg` that detection cannot honour."""
    return [name for name in REFUSED if getattr(cfg, name)]


def augment_boxes(x: torch.Tensor, targets: torch.Tensor, cfg: Augment, mean: torch.Tensor, std: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [N, C, H, W] (normalised) and targets [N, M, 5] after one random map per image."""
    n, _, h, w = x.shape
    flip = (torch.rand(n, generator=generator) < 0.5) if cfg.flip else torch.zeros(n, dtype=torch.bool)
    zoom = torch.ones(n)
    if cfg.resized_crop is not None:  # the share of the area kept: a zoom in by 1/sqrt(share)
        zoom = torch.sqrt(torch.empty(n).uniform_(*cfg.resized_crop, generator=generator))
    shift = default_shift(h, w) if cfg.shift is None else cfg.shift
    slack_x, slack_y = (1 - zoom) * w / 2, (1 - zoom) * h / 2  # a zoomed-in window may sit anywhere inside the image
    offset_x = (torch.rand(n, generator=generator) * 2 - 1) * slack_x + torch.randint(-shift, shift + 1, (n,), generator=generator)
    offset_y = (torch.rand(n, generator=generator) * 2 - 1) * slack_y + torch.randint(-shift, shift + 1, (n,), generator=generator)
    # output pixel u samples input pixel  zoom * (u - centre) + centre + offset  (after the flip)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -zoom, zoom)
    theta[:, 1, 1] = zoom
    theta[:, 0, 2] = offset_x * 2 / w
    theta[:, 1, 2] = offset_y * 2 / h
    background = -mean / std
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    x = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background
    targets = _moved_boxes(targets, flip, zoom, offset_x, offset_y, w, h)
    if cfg.color_jitter:
        x = color_jittered(x, cfg.color_jitter, mean, std, generator)
    return x, targets


def _moved_boxes(targets: torch.Tensor, flip, zoom, offset_x, offset_y, w: int, h: int) -> torch.Tensor:
    """Each box's corners through the inverse of the sampling map, clipped; boxes mostly gone become padding."""
    device = targets.device
    flip, zoom, offset_x, offset_y = (t.to(device)[:, None] for t in (flip, zoom, offset_x, offset_y))
    cls, x1, y1, x2, y2 = targets.unbind(2)
    scale_x = torch.where(flip, -zoom, zoom)  # the map's x factor: negative when flipped
    centre_x, centre_y = w / 2, h / 2
    ux1, ux2 = (x1 - centre_x - offset_x) / scale_x + centre_x, (x2 - centre_x - offset_x) / scale_x + centre_x
    nx1, nx2 = torch.minimum(ux1, ux2), torch.maximum(ux1, ux2)
    ny1, ny2 = (y1 - centre_y - offset_y) / zoom + centre_y, (y2 - centre_y - offset_y) / zoom + centre_y
    area = (nx2 - nx1) * (ny2 - ny1)
    cx1, cx2, cy1, cy2 = nx1.clamp(0, w), nx2.clamp(0, w), ny1.clamp(0, h), ny2.clamp(0, h)
    kept = (cls >= 0) & ((cx2 - cx1) * (cy2 - cy1) >= KEPT_AREA * area) & (cx2 - cx1 >= MIN_SIDE) & (cy2 - cy1 >= MIN_SIDE)
    moved = torch.stack([torch.where(kept, cls, torch.full_like(cls, -1.0)), cx1, cy1, cx2, cy2], dim=2)
    return torch.where(kept[:, :, None], moved, torch.full_like(moved, -1.0))

