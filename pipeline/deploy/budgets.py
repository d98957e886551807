"""Judge figures against a device's budgets: one row per budget with value, limit and verdict.

A figure that could not be measured has value None and verdict None; the gate treats that as
"cannot judge" (fail closed), never as a pass.
"""

from __future__ import annotations

from devices.on_device import validate_on_device as on_device
from pipeline.deploy.profiles import Budgets

RULES = on_device.RULES  # one set of rules for the pipeline, `compress gate` and the on-device script
overall = on_device.overall
VERDICT = {True: "PASS", False: "FAIL", None: "CANNOT JUDGE"}  # overall()'s three answers, as every table prints them


def judge(budgets: Budgets, figures: dict[str, float | None]) -> dict[str, dict]:
    return on_device.judge(budgets.model_dump(exclude_none=True), figures)
