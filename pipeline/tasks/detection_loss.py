"""The detection training objective (FCOS, one level): which locations learn which object, and the loss.

Assignment: a location is positive for an object when it lies inside the box and within
`CENTRE_RADIUS` strides of its centre (centre sampling), and the location nearest the centre always
is, so even an object smaller than a stride gets one; a location claimed by several objects learns
the smallest. Loss terms, as the training loop logs them: `cls` (sigmoid focal loss over every
location and class, per positive), `box` (generalised IoU of the decoded boxes, weighted by the
centre-ness target), `ctr` (binary cross-entropy of the centre-ness logit on positives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CENTRE_RADIUS = 1.5  # in strides
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0


def grid_points(height: int, width: int, stride: int, device=None) -> torch.Tensor:
    """The centres [A, 2] (x, y) of the output locations, row-major like the model's outputs."""
    ys = (torch.arange(height // stride, dtype=torch.float32, device=device) + 0.5) * stride
    xs = (torch.arange(width // stride, dtype=torch.float32, device=device) + 0.5) * stride
    return torch.stack([xs.repeat(len(ys)), ys.repeat_interleave(len(xs))], dim=1)


def assign(points: torch.Tensor, targets: torch.Tensor, stride: int, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image and location, the index of its object in `targets` [N, M, 5], and whether it has one."""
    valid = targets[:, :, 0] >= 0  # [N, M]
    x1, y1, x2, y2 = (targets[:, None, :, k] for k in range(1, 5))  # [N, 1, M]
    px, py = points[None, :, 0, None], points[None, :, 1, None]  # [1, A, 1]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    reach = CENTRE_RADIUS * stride
    inside = (px > x1) & (px < x2) & (py > y1) & (py < y2) & ((px - cx).abs() < reach) & ((py - cy).abs() < reach)
    rows = (points[:, 1] // stride).long().max() + 1
    nearest = (cy // stride).clamp(0, rows - 1) * columns + (cx // stride).clamp(0, columns - 1)  # [N, 1, M]
    locations = torch.arange(len(points), device=points.device)[None, :, None]
    claimed = (inside | (locations == nearest.long())) & valid[:, None, :]  # [N, A, M]
    area = ((x2 - x1) * (y2 - y1)).expand_as(claimed)
    area = torch.where(claimed, area, torch.full_like(area, float("inf")))
    smallest, index = area.min(dim=2)
    return index, torch.isfinite(smallest)


def centreness(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """FCOS's centre-ness of each point in its box: 1 at the centre, towards 0 at an edge."""
    left, top = points[:, 0] - boxes[:, 0], points[:, 1] - boxes[:, 1]
    right, bottom = boxes[:, 2] - points[:, 0], boxes[:, 3] - points[:, 1]
    lr = torch.stack([left, right], 1).clamp(min=1e-6)
    tb = torch.stack([top, bottom], 1).clamp(min=1e-6)
    return torch.sqrt(lr.min(1).values / lr.max(1).values * tb.min(1).values / tb.max(1).values)


def giou_loss(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU, per box pair [P]."""
    area = lambda b: (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)  # noqa: E731
    top_left = torch.maximum(predicted[:, :2], truth[:, :2])
    bottom_right = torch.minimum(predicted[:, 2:], truth[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(1)
    union = area(predicted) + area(truth) - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.maximum(predicted[:, 2:], truth[:, 2:]) - torch.minimum(predicted[:, :2], truth[:, :2])).clamp(min=0).prod(1)
    return 1 - (iou - (hull - union) / hull.clamp(min=1e-6))


def detection_loss(outputs: torch.Tensor, targets: torch.Tensor, image_size: tuple[int, int], stride: int) -> dict[str, torch.Tensor]:
    """The three terms for a batch: `outputs` [N, A, 5 + K] (boxes decoded, raw logits), `targets` [N, M, 5]."""
    n, locations, channels = outputs.shape
    classes = channels - 5
    points = grid_points(*image_size, stride, device=outputs.device)
    if len(points) != locations:
        raise ValueError(f"the model returns {locations} locations, but a {image_size[0]}x{image_size[1]} image at stride {stride} has {len(points)}")
    index, positive = assign(points, targets, stride, image_size[1] // stride)
    matched = torch.gather(targets, 1, index[:, :, None].expand(n, locations, 5))  # [N, A, 5]
    onehot = torch.zeros(n, locations, classes, device=outputs.device)
    onehot[positive] = F.one_hot(matched[positive][:, 0].long(), classes).float()
    positives = max(1, int(positive.sum()))
    cls = _focal(outputs[:, :, 5:], onehot).sum() / positives
    if not positive.any():
        zero = outputs[:, :, :5].sum() * 0.0  # keeps the graph whole for a batch without objects
        return {"cls": cls, "box": zero, "ctr": zero}
    truth = matched[positive][:, 1:]
    where = points[None].expand(n, locations, 2)[positive]
    target_ctr = centreness(where, truth)
    box = (giou_loss(outputs[positive][:, :4], truth) * target_ctr).sum() / target_ctr.sum().clamp(min=1e-6)
    ctr = F.binary_cross_entropy_with_logits(outputs[positive][:, 4], target_ctr)
    return {"cls": cls, "box": box, "ctr": ctr}


def _focal(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    p_t = p * onehot + (1 - p) * (1 - onehot)
    alpha = FOCAL_ALPHA * onehot + (1 - FOCAL_ALPHA) * (1 - onehot)
    return alpha * ce * (1 - p_t) ** FOCAL_GAMMA
