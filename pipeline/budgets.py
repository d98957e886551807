"""Judge figures against a device's budgets: one row per budget with value, limit and verdict.

A figure that could not be measured has value None and verdict None; the gate treats that as
"cannot judge" (fail closed), never as a pass.
"""

from __future__ import annotations

from pipeline.devices import Budgets

# budget name -> (figure it reads, True when the value must stay at or below the limit)
RULES = {
    "max_size_kb": ("size_kb", True),
    "max_latency_p90_ms": ("latency_p90_ms", True),
    "min_accuracy": ("accuracy", False),
    "max_accuracy_drop": ("accuracy_drop", True),
}


def judge(budgets: Budgets, figures: dict[str, float | None]) -> dict[str, dict]:
    rows = {}
    for name, limit in budgets.model_dump(exclude_none=True).items():
        figure, at_most = RULES[name]
        value = figures.get(figure)
        passed = None if value is None else (value <= limit if at_most else value >= limit)
        rows[name] = {"value": None if value is None else round(value, 6), "limit": limit, "passed": passed}
    return rows


def overall(rows: dict[str, dict]) -> bool | None:
    """False if any budget fails, None if any cannot be judged (or there are none), else True."""
    verdicts = [r["passed"] for r in rows.values()]
    if any(v is False for v in verdicts):
        return False
    if not verdicts or any(v is None for v in verdicts):
        return None
    return True
