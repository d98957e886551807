"""`detection`: boxes and classes of every object in an image, scored by COCO mAP (pycocotools).

The model contract: a detector takes the images [N, C, H, W] and returns one tensor [N, A, 5 + K]
over A = (H / stride) x (W / stride) output locations, row-major: each location's box decoded to
input pixels (x1, y1, x2, y2), a centre-ness logit and K class logits; it says its grid by an
integer attribute `stride` (the zoo's `tiny_det` does). Post-processing (scores, threshold, NMS)
is not in the model: `devices/on_device/detections.py` does it the same way on the host and on a board.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.core.errors import UserError
from pipeline.models.contract import forward_once
from pipeline.tasks import coco_map  # noqa: F401  (registers coco_map, coco_map50)
from pipeline.tasks.base import TASKS, Task
from pipeline.tasks.box_augment import augment_boxes, refused
from pipeline.tasks.detection_distillation import detection_distillation_terms
from pipeline.tasks.detection_loss import detection_loss
from pipeline.training.objectives import Objective


def grid_stride(model: nn.Module) -> int | None:
    """The detector's output stride: the first integer `stride` attribute among its modules (a
    wrapper's inner model counts); convolutions' own tuple strides are not it."""
    for module in model.modules():
        stride = getattr(module, "stride", None)
        if isinstance(stride, int) and not isinstance(stride, bool) and stride > 0:
            return stride
    return None


def check_detector(model: nn.Module, sample: torch.Tensor, num_classes: int, what: str) -> None:
    """One forward on real images; refuse an output the detection task cannot decode, with the fix."""
    stride = grid_stride(model)
    if stride is None:
        raise UserError(f"{what}: a detector must say its output grid with an integer attribute `stride` (e.g. `self.stride = 8`); "
                        "its output has one row per location of that grid")
    n, _, h, w = sample.shape
    output = forward_once(model, sample, what)
    expected = [n, (h // stride) * (w // stride), 5 + num_classes]
    if not isinstance(output, torch.Tensor) or list(output.shape) != expected:
        got = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise UserError(
            f"{what}: forward returns {got}, but a detector for {num_classes} classes at stride {stride} on {h}x{w} images must return "
            f"{expected}: per location x1, y1, x2, y2 (input pixels), a centre-ness logit, {num_classes} class logits"
        )


def detection_objective(model: nn.Module, cfg) -> Objective:
    """The detection loss at the model's grid (`detection_loss.py`); `cfg` (a TrainConfig) sets nothing of it."""
    stride = grid_stride(model)

    def terms(batch) -> dict[str, torch.Tensor]:
        return detection_loss(batch.logits, batch.y, tuple(batch.x.shape[2:]), stride)

    return terms


def _augment(x, y, cfg, mean, std, generator):
    x, y = augment_boxes(x, y, cfg, mean, std, generator)
    return x, y, None


DETECTION = TASKS.register("detection")(Task(
    name="detection",
    metric="coco_map",
    targets="boxes",
    check_output=check_detector,
    objective=detection_objective,
    augment=_augment,
    prediction_outputs=lambda classes: 5 + classes,
    refused_augment=refused,
    distillation=lambda model: detection_distillation_terms(grid_stride(model)),
))
