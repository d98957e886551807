"""The arithmetic of a MACs or params target, apart from the pruner so it can be checked exactly:
which figure a target is on, the goal of each round, and whether the last round is within it.

A `keep_*` target is a fraction of the starting figure; a `max_*` target is the number itself,
turned into the fraction it is of the start (1 or more: the model is already within it)."""

from __future__ import annotations

import math

FLOAT_SLACK = 1e-6  # float rounding of goal x start, far under one MAC; a budget is a budget, so nothing more


def size_goal(kind: str, value: float, figures: dict[str, int]) -> tuple[str, int, float]:
    """(the figure the target is on, its starting value, the fraction of it to keep)."""
    measure = "macs" if kind.endswith("macs") else "params"
    start = figures[measure]
    return measure, start, value / start if kind.startswith("max_") else value


def round_goal(keep: float, k: int, steps: int, schedule: str) -> float:
    """The fraction of the start that round k of `steps` prunes to: linear removes the same amount
    each round; geometric the same fraction of what is left."""
    return keep ** (k / steps) if schedule == "geometric" else 1 - (1 - keep) * k / steps


def within(figure: int, fraction: float, start: int) -> bool:
    """Whether `figure` (a count of MACs or parameters) is at or under `fraction` of `start`: at or
    under the whole count the goal allows."""
    return figure <= math.floor(fraction * start + FLOAT_SLACK)
