"""One trial: the recipe with the trial's values, run as an ordinary run folder seeded from the stage
store, and what the study keeps of it (validation figures per device, the final model's size, the
stages reused, the worker's memory; the test figures only for reading after a trial is picked).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from exporters import ParityError
from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder, StageFolder
from pipeline.core.run_log import console_quiet
from pipeline.deploy.profiles import load_profile
from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe, stage_fingerprints
from pipeline.tune.picks import MODEL_FIGURES, broken_limits
from pipeline.tune.search import TrialFeed, objective_values
from pipeline.tune.spec import Param, TuneConfig, with_values
from pipeline.tune.tune_folder import TuneFolder


def suggest(trial, path: str, param: Param) -> Any:
    if param.int is not None:
        return trial.suggest_int(path, *param.int, log=param.log)
    if param.float is not None:
        return trial.suggest_float(path, *param.float, log=param.log)
    return json.loads(trial.suggest_categorical(path, [json.dumps(c) for c in param.choice]))  # lists (widths) as JSON text


def device_figures(report: dict) -> dict[str, dict]:
    """Per device, the validation figures its choice read: metric, whether it meets every budget, what
    it breaks; the shipped file's p50 latency and size (a Pareto objective's axes) and the latency and
    accuracy limits (drawn in the report)."""
    figures = {}
    for name, d in report["devices"].items():
        budgets = d.get("budgets_on_validation") or {}
        figures[name] = {
            "artifact": d["artifact"], "val_accuracy": d.get("val_accuracy"), "passed_on_validation": d.get("passed_on_validation"),
            "broken": [b for b, row in budgets.items() if row["passed"] is False],
            "latency_p50_ms": (d.get("latency_ms") or {}).get("p50"), "size_kib": round(d["size_bytes"] / 1024, 3) if d.get("size_bytes") else None,
            "limits": {b: budgets[b]["limit"] for b in ("max_latency_p90_ms", "min_accuracy", "max_size_kb") if b in budgets},
        }
    return figures


def with_shipped_files(raw: dict, recipe, figures: dict[str, dict]) -> dict:
    """The trial's recipe with the file each device shipped written into the choosing stage's `ship`
    (`validate.ship`), so `compress run` of a tuned recipe ships the files the study scored. Without
    it, two files close in speed can ship either way from one run to the next: their speed ratio
    moves with the host's state (on a pruned tiny_cnn, INT8 read 1.05x FP32 in one run and 1.15x in
    another). A recipe that forces its files already (`artifact`) is left as written."""
    chooser = next((e for e in reversed(recipe.stages) if "ship" in type(e.config).model_fields), None)
    if chooser is None or not figures or getattr(chooser.config, "artifact", "auto") != "auto":
        return raw
    return with_values(raw, {f"{chooser.name}.ship": {device: f["artifact"] for device, f in figures.items()}})


def give_back_memory() -> None:
    """Between trials: collect the trial's cycles and hand freed heap back to the OS (glibc keeps it
    otherwise), so a worker's memory after trial 50 is what it was after trial 1."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def resident_mb() -> float | None:
    """This process's resident memory now, MB (Linux; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def final_model(report: dict) -> dict:
    """Parameters and MACs of the recipe's final model, as its last stage recorded them."""
    for stage in reversed(report["stages"]):
        if "params" in (stage.get("metrics") or {}):
            return {"params": stage["metrics"]["params"], "macs": stage["metrics"].get("macs")}
    return {}


def limits_before_training(tune: TuneConfig, recipe):
    """`after_build` for the runner when the recipe has model limits and no stage that removes
    channels: the model as built then bounds the final one below, so a model already over a limit
    is refused (the trial pruned, nothing trained) instead of trained for nothing. None otherwise."""
    limits = tune.limits.model_dump()
    if all(v is None for v in limits.values()) or recipe.removes_channels:
        return None

    def after_build(figures: dict) -> None:
        import optuna

        broken = broken_limits(limits, figures)
        if broken:
            raise optuna.TrialPruned("the model as built breaks " + ", ".join(
                f"{b} ({figures[MODEL_FIGURES[b]]:,} > {limits[b]:,})" for b in broken) + "; no stage of the recipe removes channels, so it was not trained")

    return after_build


def run_trial(trial, recipe_raw: dict, tune: TuneConfig, folder: TuneFolder, source: str, deadline: float | None = None) -> float | list[float]:
    import optuna

    values = {path: suggest(trial, path, param) for path, param in tune.space.items()}
    raw = with_values(recipe_raw, values)
    recipe = parse_recipe(raw, f"{source} (trial {trial.number})")
    out = folder.trial(trial.number)
    stage_dirs = [RunFolder(out).stage(i, entry.name).path for i, entry in enumerate(recipe.stages)]
    fingerprints = stage_fingerprints(recipe, [load_profile(d).model_dump() for d in recipe.header.devices])
    reused = folder.store.seed_run(stage_dirs, fingerprints)
    trial.set_user_attr("values", values)
    trial.set_user_attr("reused_stages", reused)
    trial.set_user_attr("reused_seconds", round(sum(StageFolder(d).saved_state()["seconds"] for d in stage_dirs[:reused]), 2))  # what the store saved
    started = time.perf_counter()
    try:
        with console_quiet():  # the trial's lines go to its run.log; the tune prints one line per trial
            report = run_recipe(recipe, out, quiet=True, listener=TrialFeed(trial, tune.pruner_name != "none", deadline),
                                after_build=limits_before_training(tune, recipe))
    except optuna.TrialPruned as e:  # the line per trial says why: the pruner at an epoch, or a model over the limits
        trial.set_user_attr("pruned_because", str(e))
        raise
    except (UserError, ParityError) as e:  # the study records why (another worker may write the summary) and goes on
        trial.set_user_attr("error", str(e).strip().splitlines()[0][:500] if str(e).strip() else type(e).__name__)
        raise
    finally:  # a pruned or failed trial's finished stages are still worth keeping
        folder.store.keep(stage_dirs, fingerprints)
        finished = sum(StageFolder(d).finished_with(f) for d, f in zip(stage_dirs, fingerprints))
        trial.set_user_attr("stages", min(len(stage_dirs), finished + 1))  # the stages it needed: those it finished and the one it stopped in
    figures = device_figures(report)
    model = final_model(report)
    for f in figures.values():  # a model limit broken is broken for every device
        f["broken"] += broken_limits(tune.limits.model_dump(), model)
        f["passed_on_validation"] = f["passed_on_validation"] and not f["broken"]
    devices = list(figures)
    score = objective_values(tune, devices, figures)
    trial.set_user_attr("devices", figures)
    trial.set_user_attr("model", model)
    trial.set_user_attr("score", score[0])
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
    give_back_memory()
    trial.set_user_attr("worker_rss_mb", resident_mb())  # the tune process after the trial: a study must not grow with its trials
    trial.set_user_attr("constraints", [float(len(f["broken"])) for f in figures.values()])
    # kept in the study, not only in this worker's folder: another worker (machine) may write the summary.
    # The test figures are the ones validate measured after its choice; the tune reads them only for the trial it gives a device.
    pinned = with_shipped_files(raw, recipe, figures)
    trial.set_user_attr("pins_files", pinned != raw)
    raw = pinned
    trial.set_user_attr("recipe", raw)
    trial.set_user_attr("test", {name: {"accuracy": d.get("accuracy"), "passed": d.get("passed")} for name, d in report["devices"].items()})
    (out / "tuned-recipe.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return score if tune.pareto else score[0]
