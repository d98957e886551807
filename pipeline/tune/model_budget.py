"""A model budget on the command line of the one-line tune: the count as a user writes it (8M, 15k)
and what it does to the default spec (prune straight to it; refuse any trial over it)."""

from __future__ import annotations

import math

from pipeline.core.errors import UserError

SUFFIXES = {"k": 1e3, "M": 1e6, "G": 1e9}


def count(text: str, option: str) -> int:
    """A count as a user writes it: 14862, 8e6, 8M, 15k, 1.5G."""
    number, scale = (text[:-1], SUFFIXES[text[-1]]) if text and text[-1] in SUFFIXES else (text, 1)
    try:
        value = float(number) * scale
    except ValueError:
        value = 0
    if not (value >= 1 and math.isfinite(value)):  # NaN fails the first, inf the second
        raise UserError(f"{option} {text!r}: give a count of at least 1, as 14862, 8e6, 8M or 15k")
    return int(value)


def with_model_budget(spec: dict, max_macs: int | None, max_params: int | None) -> dict:
    """A model budget given on the command line: prune straight to it (MACs first when both are given)
    instead of searching how much to keep, and refuse any trial whose final model breaks either."""
    if max_macs is None and max_params is None:
        return spec
    limits = {k: v for k, v in (("max_macs", max_macs), ("max_params", max_params)) if v is not None}
    prune = next(stage["prune"] for stage in spec["stages"] if "prune" in stage)
    prune["target"] = {"max_macs": max_macs} if max_macs is not None else {"max_params": max_params}
    spec["tune"]["space"] = {k: v for k, v in spec["tune"]["space"].items() if k != "prune.target.keep_macs"}
    spec["tune"]["limits"] = limits
    return spec
