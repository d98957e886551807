"""The check that a detector's file with NMS in its graph (`onnx_nms.py`) keeps the objects the
numpy post-processing keeps from the file without it: the parity rule for post-processing, as
`parity.py` is for a model's outputs. A file that fails it is not kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devices.on_device import detections
from devices.on_device.runtimes import open_runner


def check_against_numpy(source: Path, target: Path, images: np.ndarray, score_floor: float, iou: float, max_per_class: int = 100) -> int:
    """Run both files on `images` and demand the same objects: the in-graph NMS against the numpy
    post-processing of the raw outputs (`detections.decode`) at the same settings: as many objects,
    the same scores, and the same class and box for each. Objects tied with the last one kept are
    compared by score only: equal scores (common in INT8 files) may leave NMS in either order, and
    where the cap cuts through a tie either may be kept. Returns how many objects were compared;
    raises ValueError naming the first image that differs."""
    raw = open_runner(Path(source))(images)[0]
    expected = [detections.decode(r, score_floor, iou, max_per_class) for r in raw]
    found = detections.from_graph(*open_runner(Path(target))(images), len(images), max_per_class)
    for image, (a, b) in enumerate(zip(expected, found)):
        if len(a.scores) != len(b.scores) or not np.allclose(np.sort(a.scores), np.sort(b.scores), atol=1e-5):
            raise ValueError(f"{Path(target).name}: image {image}: the graph's NMS kept {len(b.scores)} object(s), "
                             f"numpy post-processing {len(a.scores)}, or other scores")
        if not np.allclose(_untied(a), _untied(b), atol=1e-3):
            raise ValueError(f"{Path(target).name}: image {image}: the graph's NMS kept other boxes or classes than numpy post-processing")
    return sum(len(a.scores) for a in expected)


def _untied(found: detections.Detections) -> np.ndarray:
    """Class and box of every object scored clearly above the last one kept, in a fixed order."""
    clear = found.scores > np.min(found.scores, initial=np.inf) + 1e-5
    rows = np.column_stack([found.classes[clear], found.boxes[clear]])
    return rows[np.lexsort(rows.T)]
