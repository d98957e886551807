"""COCO mAP of a detector's raw outputs, computed by pycocotools (the reference evaluator, not a copy).

Both registered metrics take what every metric takes, `(outputs, targets)`: the model's raw outputs
[N, A, 5 + K] (decoded here by `devices/on_device/detections.py`, the code a board runs) and the
split's targets [N, M, 5], one row per object (class, x1, y1, x2, y2 in input pixels), padded
with class -1. `coco_map` is mAP@0.5:0.95, `coco_map50` mAP@0.5; both lie in 0..1, so the budgets
`min_accuracy` / `max_accuracy_drop` read them as they read top-1.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from devices.on_device.detections import Detections, decode_batch
from pipeline.core.metrics import METRICS


def coco_ground_truth(targets: np.ndarray, classes: int) -> dict:
    """The split's targets as a COCO ground-truth dataset (image ids 0..N-1, category ids 0..K-1)."""
    images, annotations = [], []
    for image_id, rows in enumerate(targets):
        images.append({"id": image_id})
        for cls, x1, y1, x2, y2 in rows[rows[:, 0] >= 0]:
            w, h = float(x2 - x1), float(y2 - y1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                                "bbox": [float(x1), float(y1), w, h], "area": w * h, "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [{"id": k} for k in range(classes)]}


def coco_results(detections: list[Detections]) -> list[dict]:
    return [
        {"image_id": image_id, "category_id": int(c), "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(s)}
        for image_id, d in enumerate(detections)
        for (x1, y1, x2, y2), s, c in zip(d.boxes, d.scores, d.classes)
    ]


def coco_stats(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """pycocotools' twelve summary figures (stats[0] mAP@0.5:0.95, stats[1] mAP@0.5, …); zeros
    when the model found nothing (pycocotools refuses an empty result list)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    classes = outputs.shape[2] - 5
    results = coco_results(decode_batch(outputs))
    if not results or not (targets[:, :, 0] >= 0).any():
        return np.zeros(12)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        truth = COCO()
        truth.dataset = coco_ground_truth(targets, classes)
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.maximum(evaluation.stats, 0.0)  # -1 marks "no object of this size": no score, not a negative one


@METRICS.register("coco_map")
def coco_map(outputs: np.ndarray, targets: np.ndarray) -> float:
    """COCO mAP@0.5:0.95."""
    return float(coco_stats(outputs, targets)[0])


@METRICS.register("coco_map50")
def coco_map50(outputs: np.ndarray, targets: np.ndarray) -> float:
    """COCO mAP@0.5 (PASCAL VOC's IoU)."""
    return float(coco_stats(outputs, targets)[1])
