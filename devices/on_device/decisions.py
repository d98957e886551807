"""What a model decided on each sample, how two files' decisions agree, and how they score against
the labels: the one place that knows a classifier's outputs from a detector's, shared by export
parity, INT8 checks, bundles and the board, so every room judges alike.

- [N, K] class logits: the decision is the predicted class; agreement the share of samples with
  the same class; the score top-1 accuracy.
- [N, A, 5 + K] detector outputs: the decision is the decoded detections (`detections.py`, stored
  padded [N, 100, 6]); agreement the share of shown objects (score >= 0.3, of both files) the other
  file also found at IoU >= 0.5, same class; the score COCO mAP@0.5:0.95 (`coco_eval.py`, pycocotools;
  None on a board without it, never a home-made figure).

numpy only (pycocotools when a detector's mAP is asked), like the rest of `on_device/`.
"""

from __future__ import annotations

import numpy as np

try:  # run from the project; on a board the modules stand beside this one
    from devices.on_device import coco_eval, detections
except ImportError:  # pragma: no cover - exercised on a board
    import coco_eval  # type: ignore[no-redef]
    import detections  # type: ignore[no-redef]


def decisions(outputs: np.ndarray) -> np.ndarray:
    """Predicted classes [N] of logits, or padded detections [N, 100, 6] of a detector's outputs."""
    if outputs.ndim == 3:
        return detections.padded(detections.decode_batch(outputs))
    return outputs.argmax(1).astype(np.int64)


def agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """The share of two files' decisions (as `decisions` returns them) that agree."""
    if reference.ndim == 3:
        return detections.agreement(detections.unpadded(reference), detections.unpadded(other))
    return float(np.mean(reference == other)) if len(reference) else 1.0


def output_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """The agreement of two files' raw outputs; outputs that carry no decision (neither logits nor
    a detector's) agree by definition, and parity rests on their largest difference."""
    if reference.ndim not in (2, 3):
        return 1.0
    return agreement(decisions(reference), decisions(other))


def app_post_processing(outputs: np.ndarray):
    """A detector's output for one image turned into what an app draws: decoded, floored at the
    shown score, NMS (what a detector's latency figure includes)."""
    return detections.decode(outputs[0], score_floor=detections.SHOWN)


def score(decided: np.ndarray, labels: np.ndarray) -> float | None:
    """Top-1 accuracy of predicted classes, or COCO mAP of padded detections against box targets
    [N, M, 5]; None where pycocotools is not installed (a board: `pip install pycocotools`)."""
    if decided.ndim == 3:
        try:
            return float(coco_eval.stats(detections.unpadded(decided), labels)[0])
        except ImportError:
            return None
    return float(np.mean(decided == labels)) if len(labels) else 0.0
