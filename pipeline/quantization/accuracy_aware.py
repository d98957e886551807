"""Accuracy-aware INT8: the fewest FP32 fallbacks that keep the accuracy drop within a budget.

Back-end agnostic: the caller gives `build(calibration, excluded_nodes) -> model file` and
`score(model file) -> validation accuracy` (measured on the exported ONNX in onnxruntime, the way it
ships). The search, after Intel Neural Compressor's and NNCF's accuracy-control loops:

1. fully INT8 with each calibration method; stop if the best is within budget;
2. rank compute nodes by sensitivity: the accuracy regained when that node alone stays FP32;
3. leave nodes in FP32 in that order until the budget holds;
4. drop any fallback that turns out unnecessary (fewest fallbacks, not just a prefix of the ranking).

If no candidate meets the budget, the most accurate one is kept and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

DROP_DIGITS = 6  # drops are compared to the budget at a millionth of a point: 0.90 - 0.885 is 1.5000000000000013 points in floating point


@dataclass
class Trial:
    calibration: str
    excluded: tuple[str, ...]
    accuracy: float
    path: Path

    def row(self, reference: float) -> dict:
        return {
            "calibration": self.calibration,
            "fp32_nodes": list(self.excluded),
            "val_accuracy": round(self.accuracy, 5),
            "drop_points": round((reference - self.accuracy) * 100, 4),
        }


@dataclass
class SearchResult:
    best: Trial
    budget_met: bool
    reference_accuracy: float
    budget_points: float
    trials: list[Trial] = field(default_factory=list)
    sensitivity: list[dict] = field(default_factory=list)

    def fp32_nodes(self) -> list[dict]:
        """Each node left in FP32 and why."""
        gained = {row["node"]: row for row in self.sensitivity}
        return [
            {
                "node": node,
                "reason": (
                    f"alone in FP32 it regained {gained[node]['gain_points']:+.2f} points on validation "
                    f"(sensitivity rank {gained[node]['rank']} of {len(self.sensitivity)}); without it the budget was not met"
                )
                if node in gained
                else "excluded by the search",
            }
            for node in self.best.excluded
        ]

    def summary(self) -> dict:
        return {
            "budget_points": self.budget_points,
            "budget_met": self.budget_met,
            "fp32_val_accuracy": round(self.reference_accuracy, 5),
            "chosen": self.best.row(self.reference_accuracy),
            "fp32_nodes": self.fp32_nodes(),
            "sensitivity": self.sensitivity,
            "trials": [t.row(self.reference_accuracy) for t in self.trials],
        }


def search(
    build: Callable[[str, tuple[str, ...]], Path],
    score: Callable[[Path], float],
    calibrations: list[str],
    nodes: list[str],
    reference_accuracy: float,
    budget_points: float,
    max_fp32_nodes: int | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> SearchResult:
    trials: list[Trial] = []

    def attempt(calibration: str, excluded: tuple[str, ...]) -> Trial:
        path = build(calibration, excluded)
        trial = Trial(calibration, excluded, score(path), path)
        trials.append(trial)
        log(
            f"accuracy_aware: {calibration}, {len(excluded)} FP32 node(s): val acc {trial.accuracy:.4f} "
            f"(drop {(reference_accuracy - trial.accuracy) * 100:.2f} points, budget {budget_points})"
        )
        return trial

    def meets(trial: Trial) -> bool:
        return round((reference_accuracy - trial.accuracy) * 100, DROP_DIGITS) <= budget_points

    def result(best: Trial, met: bool, sensitivity: list[dict] = ()) -> SearchResult:
        return SearchResult(best, met, reference_accuracy, budget_points, trials, list(sensitivity))

    full = [attempt(c, ()) for c in calibrations]
    best_full = max(full, key=lambda t: t.accuracy)
    if meets(best_full):
        return result(best_full, True)

    calibration = best_full.calibration
    sensitivity = []
    for node in nodes:
        trial = attempt(calibration, (node,))
        sensitivity.append({"node": node, "gain_points": round((trial.accuracy - best_full.accuracy) * 100, 4)})
    sensitivity.sort(key=lambda row: -row["gain_points"])
    for rank, row in enumerate(sensitivity, 1):
        row["rank"] = rank
    ranked = [row["node"] for row in sensitivity]

    limit = len(ranked) if max_fp32_nodes is None else min(max_fp32_nodes, len(ranked))
    found = None
    for count in range(limit):
        prefix = tuple(ranked[: count + 1])
        candidate = next((t for t in trials if t.calibration == calibration and t.excluded == prefix), None)
        candidate = candidate or attempt(calibration, prefix)
        if meets(candidate):
            found = candidate
            break
    if found is None:
        return result(max(trials, key=lambda t: t.accuracy), False, sensitivity)

    # Step 4: a node added early may be unnecessary once later ones are FP32; try without each.
    for node in list(found.excluded[:-1])[::-1]:
        fewer = tuple(n for n in found.excluded if n != node)
        trial = attempt(calibration, fewer)
        if meets(trial):
            found = trial
    return result(found, True, sensitivity)

