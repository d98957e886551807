"""COCO mAP of a detector's raw outputs, computed by pycocotools (the reference evaluator, not a copy).

Both registered metrics take what every metric takes, `(outputs, targets)`: the model's raw outputs
[N, A, 5 + K], decoded by `devices/on_device/detections.py` (the code a board runs), and the split's
targets [N, M, 5], one row per object (class, x1, y1, x2, y2 in input pixels), padded with class
-1. `coco_map` is mAP@0.5:0.95, `coco_map50` mAP@0.5; both lie in 0..1, so the budgets `min_map` /
`max_map_drop` read them as a classifier's budgets read top-1. The evaluation itself is
`devices/on_device/coco_eval.py`, which every bundle ships, so a board computes the same figure.
"""

from __future__ import annotations

import numpy as np

from devices.on_device import coco_eval
from devices.on_device.detections import decode_batch
from pipeline.core.metrics import METRICS


def coco_stats(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """pycocotools' twelve summary figures of raw outputs (`coco_eval.stats`)."""
    return coco_eval.stats(decode_batch(outputs), targets)


@METRICS.register("coco_map")
def coco_map(outputs: np.ndarray, targets: np.ndarray) -> float:
    """COCO mAP@0.5:0.95."""
    return float(coco_stats(outputs, targets)[0])


@METRICS.register("coco_map50")
def coco_map50(outputs: np.ndarray, targets: np.ndarray) -> float:
    """COCO mAP@0.5 (PASCAL VOC's IoU)."""
    return float(coco_stats(outputs, targets)[1])
