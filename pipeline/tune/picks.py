"""Which trial each device gets, and each device's Pareto front, from the study's finished trials.

Every input here is a validation figure: a trial's row holds, per device, the validation metric of
the file validate would ship to it and the budgets that file breaks on validation. The test figure
of a trial is looked at only after it is picked (`study_summary.summarize`), so nothing here can lean on it.
"""

from __future__ import annotations


MODEL_FIGURES = {"max_params": "params", "max_macs": "macs"}  # a tune limit -> the final model's figure it reads


def broken_limits(limits: dict, model: dict) -> list[str]:
    """The tune's model limits (`max_params`, `max_macs`) the final model breaks; a figure the run
    did not record breaks its limit (nothing unmeasured passes)."""
    return [name for name, limit in limits.items()
            if limit is not None and (model.get(MODEL_FIGURES[name]) is None or model[MODEL_FIGURES[name]] > limit)]


def feasible(row: dict) -> bool:
    """The trial meets every budget of every device on validation."""
    return all(not f["broken"] for f in row["devices"].values())


def rank(row: dict, device: str) -> tuple:
    """A trial meeting every budget beats one that does not, then fewer broken budgets, then the
    higher validation metric, then the earlier trial (a tie goes to what was found first)."""
    f = row["devices"][device]
    return (not f["broken"], -len(f["broken"]), f["val_accuracy"] or 0.0, -row["trial"])


def pick(rows: list[dict], device: str) -> dict | None:
    """The trial the device gets: the best-ranked one among those that ran for it (None if none did)."""
    return max((r for r in rows if device in r["devices"]), key=lambda r: rank(r, device), default=None)


def pareto_front(rows: list[dict], device: str, figure: str) -> list[dict]:
    """The trials no other trial beats on both the device's validation metric (higher) and `figure`
    (lower: latency or size), sorted by `figure`. Trials breaking a budget are on it too if they are
    not dominated: the plot shows what the budgets cost."""
    points = [r for r in rows if device in r["devices"]]

    def dominates(a: dict, b: dict) -> bool:
        fa, fb = a["devices"][device], b["devices"][device]
        va, vb = fa["val_accuracy"] or 0.0, fb["val_accuracy"] or 0.0
        return va >= vb and fa[figure] <= fb[figure] and (va > vb or fa[figure] < fb[figure])

    front = [r for r in points if not any(dominates(other, r) for other in points)]
    return sorted(front, key=lambda r: r["devices"][device][figure])
