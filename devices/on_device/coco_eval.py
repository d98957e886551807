"""COCO mAP of decoded detections against box targets, by pycocotools: the host's metric and the
board's figure are one computation. numpy + pycocotools only (imported when asked), so it ships in
every bundle; a board without pycocotools reports no mAP rather than a home-made one."""

from __future__ import annotations

import contextlib
import io

import numpy as np


def ground_truth(targets: np.ndarray, classes: int) -> dict:
    """Targets [N, M, 5] (class, x1, y1, x2, y2; class -1 pads) as a COCO data set: image ids 0..N-1, category ids 0..K-1."""
    images, annotations = [], []
    for image_id, rows in enumerate(targets):
        images.append({"id": image_id})
        for cls, x1, y1, x2, y2 in rows[rows[:, 0] >= 0]:
            w, h = float(x2 - x1), float(y2 - y1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                                "bbox": [float(x1), float(y1), w, h], "area": w * h, "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [{"id": k} for k in range(classes)]}


def results(found) -> list[dict]:
    """Per image `Detections` (detections.py) as COCO results: [x, y, w, h], score, category."""
    return [
        {"image_id": image_id, "category_id": int(c), "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(s)}
        for image_id, d in enumerate(found)
        for (x1, y1, x2, y2), s, c in zip(d.boxes, d.scores, d.classes)
    ]


def stats(found, targets: np.ndarray) -> np.ndarray:
    """pycocotools' twelve summary figures (stats[0] mAP@0.5:0.95, stats[1] mAP@0.5, …) of per-image
    detections; zeros when nothing was found or nothing was there (pycocotools refuses both). A
    category no image holds counts in no mean (pycocotools' rule), so the class count need only
    cover every id seen."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    answer = results(found)
    present = targets[:, :, 0] >= 0
    if not answer or not present.any():
        return np.zeros(12)
    classes = int(max(targets[:, :, 0].max(), max(r["category_id"] for r in answer))) + 1
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        truth = COCO()
        truth.dataset = ground_truth(targets, classes)
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(answer), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.maximum(evaluation.stats, 0.0)  # -1 marks "no object of this size": no score, not a negative one
