"""Early exit: shallow heads answer the easy samples, the full model the rest.

A sample leaves at the first exit whose top softmax probability reaches that exit's threshold.
Thresholds are chosen on the validation split, exit by exit from the shallowest, as the lowest that
keeps the cascade's accuracy within a budget of the full model's; the test split then measures what
the cascade really does. The cascade runs as segments (input -> exit 1 + its features, features ->
exit 2 + …, features -> final logits), so a sample that leaves early never pays for the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from exporters import set_metadata

NEVER = None  # an exit whose threshold would cost too much accuracy is kept but never taken
CANDIDATES = np.round(np.concatenate([np.arange(0.5, 0.95, 0.05), np.arange(0.95, 1.0, 0.005)]), 4)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def exit_taken(exit_logits: list[np.ndarray], thresholds: list[float | None]) -> np.ndarray:
    """For each sample, the index of the exit it leaves at; len(exit_logits) means the final classifier."""
    n = len(exit_logits[0]) if exit_logits else 0
    taken = np.full(n, len(exit_logits))
    undecided = np.ones(n, dtype=bool)
    for k, (logits, t) in enumerate(zip(exit_logits, thresholds)):
        if t is NEVER:
            continue
        leave = undecided & (softmax(logits).max(1) >= t)
        taken[leave] = k
        undecided &= ~leave
    return taken


def cascade_predictions(exit_logits: list[np.ndarray], final_logits: np.ndarray, thresholds: list[float | None]) -> tuple[np.ndarray, np.ndarray]:
    taken = exit_taken(exit_logits, thresholds)
    predictions = final_logits.argmax(1).copy()
    for k, logits in enumerate(exit_logits):
        predictions[taken == k] = logits.argmax(1)[taken == k]
    return predictions, taken


def choose_thresholds(exit_logits: list[np.ndarray], final_logits: np.ndarray, labels: np.ndarray, max_drop_points: float) -> list[float | None]:
    """Greedy from the shallowest exit: the lowest threshold whose cascade stays within the budget."""
    floor = (final_logits.argmax(1) == labels).mean() - max_drop_points / 100
    chosen: list[float | None] = [NEVER] * len(exit_logits)
    for k in range(len(exit_logits)):
        for t in CANDIDATES:
            trial = chosen[:k] + [float(t)] + chosen[k + 1 :]
            predictions, _ = cascade_predictions(exit_logits, final_logits, trial)
            if (predictions == labels).mean() >= floor:
                chosen[k] = float(t)
                break
    return chosen


def summarize(exit_names: list[str], exit_logits: list[np.ndarray], final_logits: np.ndarray, labels: np.ndarray, thresholds: list[float | None]) -> dict:
    """Fraction of samples leaving at each exit and their accuracy there, plus the cascade's accuracy."""
    predictions, taken = cascade_predictions(exit_logits, final_logits, thresholds)
    rows = []
    for k, name in enumerate([*exit_names, "final"]):
        here = taken == k
        rows.append({
            "exit": name,
            "threshold": thresholds[k] if k < len(thresholds) else None,
            "fraction": round(float(here.mean()), 5),
            "accuracy": round(float((predictions[here] == labels[here]).mean()), 5) if here.any() else None,
        })
    return {
        "accuracy": round(float((predictions == labels).mean()), 5),
        "full_model_accuracy": round(float((final_logits.argmax(1) == labels).mean()), 5),
        "exits": rows,
    }


@dataclass
class Cascade:
    """What a multi-exit file says about running it as a cascade: its exits from the shallowest,
    their thresholds (None: never taken), and the segment files in the order they run."""

    exits: list[str]
    thresholds: list[float | None]
    segments: list[Path]


CASCADE_KEYS = {"exits": "exits", "thresholds": "exit_thresholds", "segments": "exit_segments"}  # ONNX metadata keys


def write_cascade(path: Path, exits: list[str], thresholds: list[float | None], segments: list[str]) -> None:
    """Stamp the cascade into the multi-exit file's metadata; segment files are named relative to it."""
    values = {"exits": exits, "thresholds": thresholds, "segments": segments}
    set_metadata(path, {key: json.dumps(values[field]) for field, key in CASCADE_KEYS.items()})


def read_cascade(path: Path) -> Cascade:
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    missing = [key for key in CASCADE_KEYS.values() if key not in meta]
    if missing:
        raise ValueError(f"{path} is not a multi-exit file written by export (metadata lacks {', '.join(missing)})")
    values = {field: json.loads(meta[key]) for field, key in CASCADE_KEYS.items()}
    return Cascade(values["exits"], values["thresholds"], [path.parent / s for s in values["segments"]])
