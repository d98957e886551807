"""The metric that budgets and accuracy-aware quantization judge: `top1` (default), `top5`, or the
user's own `"package.module:function"`, called as `function(logits, labels) -> float` with numpy
arrays ([N, classes] and [N]) and returning a score where higher is better, in 0..1 (balanced
accuracy, a per-class recall floor, …).

    # my_project/metrics.py
    def balanced_accuracy(logits, labels):
        predicted = logits.argmax(1)
        return float(np.mean([(predicted[labels == c] == c).mean() for c in np.unique(labels)]))

The figure is still called `accuracy` in reports and budgets (`min_accuracy`, `max_accuracy_drop`),
whichever metric computed it; the report records which.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pipeline.core.errors import UserError
from pipeline.core.registry import Registry
from pipeline.core.user_code import load_function

Metric = Callable[[np.ndarray, np.ndarray], float]
METRICS: Registry[Metric] = Registry("metric")


@METRICS.register("top1")
def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0


@METRICS.register("top5")
def top5(logits: np.ndarray, labels: np.ndarray) -> float:
    k = min(5, logits.shape[1])
    best = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((best == labels[:, None]).any(1).mean()) if len(labels) else 0.0


SHORT_NAMES = {"top1": "acc", "top5": "top-5", "coco_map": "mAP", "coco_map50": "mAP@0.5"}


def metric_label(metric: str | None) -> str:
    """What tables and log lines call the run's accuracy figure: a detector's is mAP, a user's
    function its name."""
    metric = metric or "top1"
    return SHORT_NAMES.get(metric, metric.rpartition(":")[2])


def label_of(metric: Metric) -> str:
    """`metric_label` of a metric function (its name is its spec's last part)."""
    return metric_label(getattr(metric, "__name__", None))


def resolve(spec: str) -> Metric:
    """A registered name, or "package.module:function"; an error names what was wrong."""
    if ":" not in spec:
        return METRICS.get(spec)
    return checked(load_function(spec, "metric", expected="a function(logits, labels) -> float"), spec)


def checked(function: Metric, spec: str) -> Metric:
    """The user's function, refusing what it must not return (a score outside 0..1, or no number)."""

    def score(logits: np.ndarray, labels: np.ndarray) -> float:
        try:
            value = function(logits, labels)
        except Exception as e:  # noqa: BLE001  user code may raise anything
            raise UserError(f"metric {spec} failed on logits {list(logits.shape)}, labels {list(labels.shape)}: {type(e).__name__}: {e}") from e
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not 0 <= float(value) <= 1:
            raise UserError(f"metric {spec} returned {value!r}; it must return a number in 0..1 (higher is better)")
        return float(value)

    score.__name__ = spec.rpartition(":")[2]  # what log lines call it (`metric_label`)
    return score
