"""How a study searches: its directions, sampler and pruner, built from the spec's `tune` section.

The objective `metric` is one value to maximise: the lowest validation metric over the devices. A
Pareto objective adds one value per device to minimise (its shipped file's p50 latency or size), so
the study keeps the front of metric against speed or size for every device at once. Either way each
device's broken budgets on validation are the constraints, which both TPE and NSGA-II steer by.

Pruning reads the validation figure where each training schedule ends, numbered by the epochs run
so far over the whole recipe (`core.epoch_feed.EpochFeed`): Hyperband or ASHA stop a trial whose
figure at a rung is below the best 1/`reduction_factor` of the trials that reached it. Optuna prunes
single-objective studies only.
"""

from __future__ import annotations

import time

from pipeline.tune.spec import TuneConfig

PARETO_FIGURE = {"pareto-latency": "latency_p50_ms", "pareto-size": "size_kib"}  # the per-device figure each Pareto objective minimises


def directions(tune: TuneConfig, devices: list[str]) -> list[str]:
    return ["maximize"] + (["minimize"] * len(devices) if tune.pareto else [])


def objective_values(tune: TuneConfig, devices: list[str], figures: dict[str, dict]) -> list[float]:
    """What the study optimises for one trial, in the order of `directions`."""
    score = min(figures[d]["val_accuracy"] or 0.0 for d in devices)
    if not tune.pareto:
        return [score]
    return [score] + [figures[d][PARETO_FIGURE[tune.objective]] for d in devices]


def make_sampler(tune: TuneConfig, constraints):
    import optuna

    name = tune.sampler_name
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=tune.seed, constraints_func=constraints, n_startup_trials=tune.startup_trials)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=tune.seed, constraints_func=constraints)
    return optuna.samplers.RandomSampler(seed=tune.seed)


def make_pruner(tune: TuneConfig):
    import optuna

    name = tune.pruner_name
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=tune.min_epochs, reduction_factor=tune.reduction_factor)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=tune.min_epochs, reduction_factor=tune.reduction_factor)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=tune.min_epochs - 1)
    return optuna.pruners.NopPruner()


class TrialFeed:
    """What a trial's run tells the study (a `core.epoch_feed.FeedListener`). Each epoch: stop if the
    study's time (`deadline`, on `time.monotonic()`) ran out, so `--time 2h` ends within an epoch of
    two hours, not when a long trial happens to finish. Each schedule's end: report the figure, and
    stop the trial if the pruner says so. The pruner never reads a mid-schedule figure: one epoch
    into a one-cycle schedule the low learning rates lead and the high ones trail, yet the high ones
    often finish best (docs/benchmarks.md, "Hyperband on a fixed schedule"). A rung at epoch k is
    read at the first schedule end at or after k."""

    def __init__(self, trial, pruning: bool, deadline: float | None = None):
        self.trial, self.pruning, self.deadline = trial, pruning, deadline

    def epoch(self, step: int, value: float) -> None:
        import optuna

        if self.deadline is not None and time.monotonic() > self.deadline:
            raise optuna.TrialPruned(f"the study's time ran out during epoch {step}")

    def schedule_end(self, step: int, value: float) -> None:
        import optuna

        if not self.pruning:
            return
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"validation {value:.4f} after epoch {step} is below the trials that reached that epoch")
