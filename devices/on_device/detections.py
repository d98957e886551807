"""A detector's outputs turned into boxes, in numpy alone: the same code on the host and on a board.

A detection model returns one tensor per image, [A, 4 + 1 + K] over its A locations: the box
(x1, y1, x2, y2 in input pixels, decoded inside the graph), a centre-ness logit and K class
logits. Post-processing (scores, a score floor, class-wise non-maximum suppression, the best
`MAX_DETECTIONS`) lives outside the model file, so an INT8 graph never quantizes a threshold and
every runtime's file is judged by the same decoding. This file imports numpy only: it is copied to
a board beside the torch-free script.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORE_FLOOR = 0.05  # detections below this score are dropped before NMS (COCO practice: mAP wants the low ones)
NMS_IOU = 0.6  # a box overlapping a better one of its class by more than this is suppressed
MAX_DETECTIONS = 100  # per image, as COCO's evaluation counts them
CANDIDATES = 1000  # the best-scoring boxes considered for NMS per image
SHOWN = 0.3  # the score a detection needs to count in agreement checks (what a user would draw)
MATCH_IOU = 0.5  # two files agree on a detection when their boxes overlap at least this, same class


@dataclass
class Detections:
    """One image's detections: boxes [D, 4] (x1, y1, x2, y2 pixels), scores [D], classes [D]."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def shown(self, floor: float = SHOWN) -> "Detections":
        keep = self.scores >= floor
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def scores(raw: np.ndarray) -> np.ndarray:
    """Per-location class scores [A, K]: the geometric mean of class and centre-ness probabilities."""
    return np.sqrt(sigmoid(raw[:, 5:]) * sigmoid(raw[:, 4:5]))


def decode(raw: np.ndarray, score_floor: float = SCORE_FLOOR, nms_iou: float = NMS_IOU, max_detections: int = MAX_DETECTIONS) -> Detections:
    """One image's raw output [A, 5 + K] as its final detections, best first."""
    raw = np.asarray(raw, dtype=np.float32)
    per_class = scores(raw)
    locations, classes = np.nonzero(per_class > score_floor)
    values = per_class[locations, classes]
    if len(values) > CANDIDATES:
        best = np.argpartition(-values, CANDIDATES - 1)[:CANDIDATES]
        locations, classes, values = locations[best], classes[best], values[best]
    boxes = raw[locations, :4]
    keep = nms(boxes, values, classes, nms_iou, max_detections)
    return Detections(boxes[keep], values[keep], classes[keep].astype(np.int64))


def decode_batch(raw: np.ndarray, **kwargs) -> list[Detections]:
    return [decode(image, **kwargs) for image in raw]


def from_graph(index: np.ndarray, values: np.ndarray, boxes: np.ndarray, images: int, most: int = MAX_DETECTIONS) -> list[Detections]:
    """The outputs of a file with NMS in its graph (`exporters/onnx_nms.py`: (image, class, location)
    per kept object, its score and box) as each image's detections, best first, at most `most`."""
    found = []
    for image in range(images):
        mine = np.flatnonzero(index[:, 0] == image)
        mine = mine[np.argsort(-values[mine], kind="stable")][:most]
        found.append(Detections(boxes[mine].astype(np.float32), values[mine].astype(np.float32), index[mine, 1].astype(np.int64)))
    return found


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of `a` [n, 4] with every box of `b` [m, 4]."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area = lambda boxes: np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, values: np.ndarray, classes: np.ndarray, iou: float, most: int = MAX_DETECTIONS) -> np.ndarray:
    """Indices kept by class-wise greedy non-maximum suppression, best score first, at most `most`.
    Boxes of different classes never suppress each other: each class's boxes are moved apart by
    more than the image (the usual offset trick), so one IoU pass serves every class."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-values, kind="stable")
    shifted = boxes[order] + (classes[order] * (np.abs(boxes).max() + 1.0))[:, None]
    x1, y1, x2, y2 = shifted.T
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    alive = np.ones(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        kept.append(order[i])
        if len(kept) == most:
            break
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        alive[rest[inter > iou * np.maximum(area[i] + area[rest] - inter, 1e-12)]] = False
    return np.array(kept, dtype=np.int64)


def matched(a: Detections, b: Detections) -> int:
    """How many of `a`'s shown detections `b` also found: a detection of the same class overlapping
    it by at least `MATCH_IOU`, at no less than half the shown score (a score just under the line in
    one file and just over it in the other is the same object, not a disagreement)."""
    a, b = a.shown(), b.shown(SHOWN / 2)
    if not len(a.scores) or not len(b.scores):
        return 0
    overlap = iou_matrix(a.boxes, b.boxes) * (a.classes[:, None] == b.classes[None, :])
    return int((overlap.max(axis=1) >= MATCH_IOU).sum())


def agreement(reference: list[Detections], other: list[Detections]) -> float:
    """How far two files saw the same objects, image by image: of all the shown detections of both,
    the share the other file also found (`matched`). 1.0 when neither shows any."""
    found = total = 0
    for a, b in zip(reference, other):
        found += matched(a, b) + matched(b, a)
        total += len(a.shown().scores) + len(b.shown().scores)
    return found / total if total else 1.0


def padded(found: list[Detections], most: int = MAX_DETECTIONS) -> np.ndarray:
    """Per-image detections as one array [N, most, 6]: x1, y1, x2, y2, score, class (class -1 pads),
    what a bundle stores and a board compares against."""
    out = np.full((len(found), most, 6), -1.0, dtype=np.float32)
    for i, d in enumerate(found):
        n = min(most, len(d.scores))
        out[i, :n, :4], out[i, :n, 4], out[i, :n, 5] = d.boxes[:n], d.scores[:n], d.classes[:n]
    return out


def unpadded(array: np.ndarray) -> list[Detections]:
    return [Detections(rows[rows[:, 5] >= 0, :4], rows[rows[:, 5] >= 0, 4], rows[rows[:, 5] >= 0, 5].astype(np.int64)) for rows in array]
