"""Prune targets: one table of kinds, each an algorithm that returns the same `Outcome`.

- `remove_channels: r`: `steps` rounds, each removing the same share of channels, then recovery.
- `keep_macs: f` / `keep_params: f`: small increments until MACs / params fall to the round's goal
  (a linear or geometric schedule toward f), recovery after each round.
- `max_macs: N` / `max_params: N`: the same, toward the fraction N is of the starting figure: a
  budget written as the number it is ("at most 8 M MACs") instead of a ratio worked out by hand.
- `device` + `latency_p90_ms` | `size_kb`: one increment at a time, the exported model measured for
  that device after each, stopping at the least pruning within the budget.

Every kind sees the same `Pruning` (the pruner, the traced model, how to recover and how to score),
so the stage only picks a row of `TARGETS` and records what comes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.core import distributed
from pipeline.core.errors import DeviceProfileError
from pipeline.deploy.profiles import load_profile
from pipeline.pruning.size_goals import round_goal, size_goal, within
from pipeline.runtime.model_cost import measure_exported
from pipeline.training.evaluation import size_figures
from pipeline.models.heads import HeadedModel

FINE_INCREMENTS = 60  # pruner steps available to approach a MACs/params/device target


class PruneTarget(BaseModel):
    """Exactly one of: remove_channels, keep_macs, keep_params, max_macs, max_params, or a device
    budget (`device` with one of `latency_p90_ms` / `size_kb`)."""

    model_config = ConfigDict(extra="forbid")

    remove_channels: float | None = Field(None, gt=0, lt=1, description="fraction of channels to remove")
    keep_macs: float | None = Field(None, gt=0, lt=1, description="fraction of the starting MACs to keep")
    keep_params: float | None = Field(None, gt=0, lt=1, description="fraction of the starting parameters to keep")
    max_macs: float | None = Field(None, gt=0, description="multiply-accumulates of one inference to prune down to (a number, not a fraction)")
    max_params: int | None = Field(None, gt=0, description="parameters to prune down to (a number, not a fraction)")
    device: str | None = Field(None, description="device profile (name or .yaml path) whose latency or size the budget is for")
    latency_p90_ms: float | None = Field(None, gt=0, description="with device: p90 latency at batch 1 on that device (estimated from the host)")
    size_kb: float | None = Field(None, gt=0, description="with device: FP32 ONNX file size, KiB")

    @model_validator(mode="after")
    def _exactly_one(self) -> "PruneTarget":
        given = [k for k in TARGETS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(TARGETS)} (got {', '.join(given) or 'none'})")
        budgets = [k for k in ("latency_p90_ms", "size_kb") if getattr(self, k) is not None]
        if self.device is not None and len(budgets) != 1:
            raise ValueError(f"a device target needs exactly one of latency_p90_ms, size_kb (got {', '.join(budgets) or 'none'})")
        if self.device is None and budgets:
            raise ValueError(f"{budgets[0]} needs device: the profile it is measured for")
        if self.device is not None:
            try:
                load_profile(self.device)  # an unknown or invalid profile is a recipe error, before any training
            except DeviceProfileError as e:
                raise ValueError(str(e)) from None
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TARGETS if getattr(self, k) is not None)

    @property
    def value(self):
        """The figure given for the kind (a fraction, a count, or the device's name)."""
        return getattr(self, self.kind)

    @property
    def budget(self) -> tuple[str, float]:
        return ("latency_p90_ms", self.latency_p90_ms) if self.latency_p90_ms is not None else ("size_kb", self.size_kb)


@dataclass
class Pruning:
    """What every target kind works with. `step` is one pruner increment; `recover(desc)` fine-tunes
    (or distils) the pruned model; `val_accuracy()` scores it on the validation split."""

    pruner: tp.pruner.MetaPruner
    traced: HeadedModel
    input_shape: tuple[int, ...]
    steps: int
    schedule: str
    max_layer_ratio: float
    step: Callable[..., None]  # step(until=None): one increment, or less of it once until() holds
    recover: Callable[[str], None]
    val_accuracy: Callable[[], float]
    log: logging.Logger
    label: str = "acc"  # what log lines call the recipe's metric (mAP for a detector)

    def figures(self) -> dict[str, int]:
        return size_figures(self.traced.backbone, self.input_shape)


@dataclass
class Outcome:
    rounds: list[dict]  # one row per round (or per timed increment, toward a device)
    reached: bool
    details: dict = field(default_factory=dict)  # extra metrics of the kind (the device target's summary)


def by_channel_ratio(target: PruneTarget, p: Pruning) -> Outcome:
    """`steps` pruner steps, each removing the same share of channels, each followed by recovery."""
    return Outcome([round_done(p, k, lambda: p.step()) for k in range(1, p.steps + 1)], reached=True)


def toward_size_goal(target: PruneTarget, p: Pruning) -> Outcome:
    """Increments until the round's MACs (or params) goal, recovery after each round; the goals
    follow a linear or geometric schedule to `keep` of the start."""
    measure, start, keep = size_goal(target.kind, target.value, p.figures())
    if keep >= 1:
        p.log.info(f"prune: the model's {start:,.0f} {measure} are already within {target.kind} {target.value:,.0f}; "
                   "no channel is removed (recovery still runs)")

    def prune_to(k: int) -> None:
        def reached() -> bool:
            return within(p.figures()[measure], round_goal(keep, k, p.steps, p.schedule), start)

        while not reached() and p.pruner.current_step < p.pruner.iterative_steps:
            p.step(until=reached)  # lands on the goal instead of one whole increment past it

    rounds = [round_done(p, k, lambda k=k: prune_to(k)) for k in range(1, p.steps + 1)]
    reached = within(rounds[-1][measure], keep, start)
    if not reached:
        p.log.warning(
            f"prune: could not reach {target.kind}={target.value:,g} within max_layer_ratio={p.max_layer_ratio}: "
            f"stopped at {rounds[-1][measure] / start:.3f} of the starting {measure}"
        )
    return Outcome(rounds, reached)


def round_done(p: Pruning, k: int, prune: Callable[[], None]) -> dict:
    """Prune, recover, and the round's row: size figures and validation accuracy."""
    prune()
    p.recover(f"recover {k}/{p.steps}")
    figures = p.figures()
    row = {"round": k, **figures, "val_accuracy": round(p.val_accuracy(), 5)}
    p.log.info(f"prune round {k}/{p.steps}: params {figures['params']:,}, MACs {figures['macs'] / 1e6:.2f} M, val {p.label} {row['val_accuracy']:.4f}")
    return row


def to_device_budget(target: PruneTarget, p: Pruning) -> Outcome:
    """One increment at a time, the exported model measured on the device after each that removed
    channels; stop at the first (least pruned) model within the budget. There are `steps` recovery
    rounds in all: one every `FINE_INCREMENTS / steps` increments while pruning goes on, the rest at
    the end (so a budget met early still gets the full recovery). A latency within budget is
    confirmed by a second, longer timing (timings on a shared host are noisy). If the budget is out
    of reach, a warning gives the closest figure."""
    profile = load_profile(target.device)
    figure, limit = target.budget
    every = max(1, FINE_INCREMENTS // p.steps)
    rows: list[dict] = []

    def measure(step: int, figures: dict) -> dict:
        """Timed on rank 0 alone (under torchrun the others wait), so one timing decides for all."""
        return distributed.once(lambda: timed(step, figures))

    def timed(step: int, figures: dict) -> dict:
        model = p.traced.backbone
        cost = measure_exported(model, p.input_shape)
        row = {"step": step, **figures, **cost, "latency_p90_ms": profile.estimate_ms(cost["host_p90_ms"]), "latency_kind": profile.latency_kind}
        row["meets"] = row[figure] <= limit
        if row["meets"] and figure == "latency_p90_ms":  # one lucky timing must not end the search
            row["confirmed_latency_p90_ms"] = profile.estimate_ms(measure_exported(model, p.input_shape, runs=400)["host_p90_ms"])
            row["meets"] = row["confirmed_latency_p90_ms"] <= limit
        p.log.info(
            f"prune toward {profile.name} {figure} <= {limit}: step {step}, MACs {row['macs'] / 1e6:.2f} M, "
            f"{figure} {row[figure]:.4g} ({row['latency_kind'] if figure == 'latency_p90_ms' else 'on disk'})"
        )
        return row

    row = measure(0, p.figures())
    rows.append(row)
    recoveries = 0
    while not row["meets"] and p.pruner.current_step < p.pruner.iterative_steps:
        p.step()
        if p.pruner.current_step % every == 0 and recoveries < p.steps - 1:
            recoveries += 1
            p.recover(f"recover {recoveries}/{p.steps} at step {p.pruner.current_step}")
        figures = p.figures()
        if figures["params"] != row["params"]:  # an increment that removed nothing is not re-timed
            row = measure(p.pruner.current_step, figures)
            rows.append(row)
    while p.pruner.current_step and recoveries < p.steps:  # a search that ended early spends the rest here
        recoveries += 1
        p.recover(f"recover {recoveries}/{p.steps}")
    for r in rows:
        r["val_accuracy"] = None
    rows[-1]["val_accuracy"] = round(p.val_accuracy(), 5)
    if not row["meets"]:
        closest = min(r[figure] for r in rows)
        p.log.warning(
            f"prune: could not bring {figure} on {profile.name} to {limit} within max_layer_ratio={p.max_layer_ratio}; "
            f"closest {closest:.4g} after {p.pruner.current_step} increments"
        )
    summary = {"device": profile.name, "figure": figure, "limit": limit, "met": row["meets"], "steps": len(rows) - 1}
    return Outcome(rows, row["meets"], {"device_target": summary})


@dataclass(frozen=True)
class TargetKind:
    """How the pruner is set up for a kind (`ratio(target, max_layer_ratio)`: the share of each
    layer it may remove; `increments(steps)`: how many steps it takes to get there) and the
    algorithm that drives it."""

    ratio: Callable[[PruneTarget, float], float]
    increments: Callable[[int], int]
    run: Callable[[PruneTarget, Pruning], Outcome]


def _up_to_limit(_target: PruneTarget, max_layer_ratio: float) -> float:
    return max_layer_ratio


def _fine(_steps: int) -> int:
    return FINE_INCREMENTS


TARGETS: dict[str, TargetKind] = {
    "remove_channels": TargetKind(lambda t, _limit: t.remove_channels, lambda steps: steps, by_channel_ratio),
    "keep_macs": TargetKind(_up_to_limit, _fine, toward_size_goal),
    "keep_params": TargetKind(_up_to_limit, _fine, toward_size_goal),
    "max_macs": TargetKind(_up_to_limit, _fine, toward_size_goal),
    "max_params": TargetKind(_up_to_limit, _fine, toward_size_goal),
    "device": TargetKind(_up_to_limit, _fine, to_device_budget),
}
