"""How two files' outputs on the same samples are compared (export parity, INT8 against FP32, a
board against the host), decided by the output itself so every room judges alike:

- [N, K] class logits: the share of samples whose predicted class is the same;
- [N, A, 5 + K] detector outputs: the share of shown objects (score >= 0.3, of both files) that
  the other file found too, same class at IoU >= 0.5 (`detections.agreement`);
- anything else carries no decision to compare: 1.0, and parity rests on the largest difference.

numpy only, like the rest of `on_device/`.
"""

from __future__ import annotations

import numpy as np

try:  # a copy on a board sits beside detections.py; the package import when run from the project
    from devices.on_device import detections
except ImportError:  # pragma: no cover - exercised on a board
    import detections  # type: ignore[no-redef]


def output_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    if reference.ndim == 2:
        return float(np.mean(reference.argmax(1) == other.argmax(1))) if len(reference) else 1.0
    if reference.ndim == 3:
        return detections.agreement(reference, other)
    return 1.0
