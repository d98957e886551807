"""Judge figures against a device's budgets: one row per budget with value, limit and verdict.

A figure that could not be measured has value None and verdict None; the gate treats that as
"cannot judge" (fail closed), never as a pass.
"""

from __future__ import annotations

from devices.on_device import verdicts
from pipeline.deploy.profiles import Budgets

RULES = verdicts.RULES  # one set of rules for the pipeline, `compress gate` and the on-device script
overall = verdicts.overall
VERDICT = verdicts.VERDICT


def judge(budgets: Budgets, figures: dict[str, float | None], task: str = "classification") -> dict[str, dict]:
    """The rows of the budgets that apply to `task` (a detector is not judged by min_accuracy, nor a classifier by min_map)."""
    return verdicts.judge(budgets.for_task(task), figures)
