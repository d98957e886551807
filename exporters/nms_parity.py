"""The check that a detector's file with NMS in its graph (`onnx_nms.py`) keeps the objects the
numpy post-processing keeps from the file without it: the parity rule for post-processing, as
`parity.py` is for a model's outputs. A file that fails it is not kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devices.on_device import detections
from devices.on_device.runtimes import open_runner


def check_against_numpy(source: Path, target: Path, images: np.ndarray, score_floor: float, iou: float, max_per_class: int) -> int:
    """Run both files on `images` and demand the same objects: the in-graph NMS against the numpy
    post-processing of the raw outputs (`detections.decode`) at the same settings: as many objects,
    the same scores, and the same class and box for each. Objects whose score another location of
    their class shares, and those tied with the last one kept, are compared by score only: equal
    scores (common in INT8 files) leave NMS free to keep either of two overlapping boxes, and the cap
    free to cut through a tie. Returns how many objects were compared; raises ValueError naming the
    first image that differs."""
    raw = open_runner(Path(source))(images)[0]
    expected = [detections.decode(r, score_floor, iou, max_per_class) for r in raw]
    found = detections.from_graph(*open_runner(Path(target))(images), len(images), max_per_class)
    for image, (a, b) in enumerate(zip(expected, found)):
        if len(a.scores) != len(b.scores) or not np.allclose(np.sort(a.scores), np.sort(b.scores), atol=1e-5):
            raise ValueError(f"{Path(target).name}: image {image}: the graph's NMS kept {len(b.scores)} object(s), "
                             f"numpy post-processing {len(a.scores)}, or other scores")
        lost = unmatched(a, b, detections.scores(raw[image]))
        if lost:
            raise ValueError(f"{Path(target).name}: image {image}: the graph's NMS kept other boxes or classes than numpy post-processing "
                             f"({lost} object(s) without a partner)")
    return sum(len(a.scores) for a in expected)


def clear_of_ties(found: detections.Detections, per_class: np.ndarray) -> np.ndarray:
    """Which objects are scored clearly above the last one kept, with a score no other location of
    their class shares (`per_class`: the image's scores [A, K])."""
    shared = (np.abs(per_class[:, found.classes] - found.scores) < 1e-6).sum(axis=0) > 1
    return (found.scores > np.min(found.scores, initial=np.inf) + 1e-5) & ~shared


def unmatched(expected: detections.Detections, found: detections.Detections, per_class: np.ndarray) -> int:
    """How many of `expected`'s objects clear of ties have no partner in `found`: the same class, the
    same score and the same box (to float rounding)."""
    lost = 0
    for i in np.flatnonzero(clear_of_ties(expected, per_class)):
        partner = (found.classes == expected.classes[i]) & (np.abs(found.scores - expected.scores[i]) < 1e-5)
        partner &= np.all(np.abs(found.boxes - expected.boxes[i]) < 1e-3, axis=1)
        lost += not partner.any()
    return lost
