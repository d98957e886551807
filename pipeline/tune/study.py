"""Run a tune study: trials as run folders, stage reuse, and per device the best trial on validation.

A trial's score is the lowest, over the recipe's devices, of the recipe metric on the validation
split of the file validate would ship to that device; its constraints are the budgets each device's
file breaks on validation (Optuna's TPE sampler steers away from trials that break any). Test-split
figures are read only after the study, for the trial each device is given.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.core import extras
from pipeline.core.errors import UserError
from pipeline.deploy.profiles import load_profile
from pipeline.core.run_folder import RunFolder
from pipeline.core.run_log import console_quiet
from pipeline.recipe import parse_recipe, read_yaml
from pipeline.runner import run_recipe, stage_fingerprints
from pipeline.tune.spec import Param, TuneConfig, check_space, seconds, split_spec, with_values
from pipeline.tune.stage_store import StageStore
from pipeline.tune.storage import open_storage, redacted
from pipeline.tune.tune_report import write_tune_markdown

log = logging.getLogger("compress")
STUDY_FILE = "study.db"


@dataclass
class TuneFolder:
    """`runs/<name>-tune/`: the study's database, one run folder per trial, the stage store, the results."""

    path: Path

    @property
    def storage(self) -> str:
        return f"sqlite:///{(self.path / STUDY_FILE).resolve()}"

    def trial(self, number: int) -> Path:
        return self.path / "trials" / f"trial-{number:04d}"

    @property
    def store(self) -> StageStore:
        return StageStore(self.path / "stage-store")

    def tuned_recipe(self, device: str) -> Path:
        return self.path / f"tuned-{Path(device).stem}.yaml"


def load_spec(path: Path) -> tuple[dict, TuneConfig]:
    recipe, tune = split_spec(read_yaml(path, "tune spec"), str(path))
    base = parse_recipe(recipe, str(path))
    if not base.stages or base.stages[-1].name != "validate" or not base.header.devices:
        raise UserError(f"{path}: a tuned recipe must end with a validate stage and name its devices: the study scores what each device would ship")
    check_space(recipe, tune, lambda r: parse_recipe(r, f"{path} (a trial)"))
    return recipe, tune


def suggest(trial, path: str, param: Param) -> Any:
    if param.int is not None:
        return trial.suggest_int(path, *param.int, log=param.log)
    if param.float is not None:
        return trial.suggest_float(path, *param.float, log=param.log)
    return json.loads(trial.suggest_categorical(path, [json.dumps(c) for c in param.choice]))  # lists (widths) as JSON text


def device_figures(report: dict) -> dict[str, dict]:
    """Per device, the validation figures its choice read: metric, whether it meets every budget, what it breaks."""
    return {
        name: {
            "artifact": d["artifact"], "val_accuracy": d.get("val_accuracy"), "passed_on_validation": d.get("passed_on_validation"),
            "broken": [b for b, row in (d.get("budgets_on_validation") or {}).items() if row["passed"] is False],
        }
        for name, d in report["devices"].items()
    }


def run_trial(trial, recipe_raw: dict, tune: TuneConfig, folder: TuneFolder, source: str) -> float:
    values = {path: suggest(trial, path, param) for path, param in tune.space.items()}
    raw = with_values(recipe_raw, values)
    recipe = parse_recipe(raw, f"{source} (trial {trial.number})")
    out = folder.trial(trial.number)
    stage_dirs = [RunFolder(out).stage(i, entry.name).path for i, entry in enumerate(recipe.stages)]
    fingerprints = stage_fingerprints(recipe, [load_profile(d).model_dump() for d in recipe.header.devices])
    reused = folder.store.seed_run(stage_dirs, fingerprints)
    started = time.perf_counter()
    with console_quiet():  # the trial's lines go to its run.log; the tune prints one line per trial
        report = run_recipe(recipe, out, quiet=True)
    folder.store.keep(stage_dirs, fingerprints)
    figures = device_figures(report)
    trial.set_user_attr("values", values)
    trial.set_user_attr("devices", figures)
    trial.set_user_attr("stages", len(recipe.stages))
    trial.set_user_attr("reused_stages", reused)
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
    trial.set_user_attr("constraints", [float(len(f["broken"])) for f in figures.values()])
    # kept in the study, not only in this worker's folder: another worker (machine) may write the summary.
    # The test figures are the ones validate measured after its choice; the tune reads them only for the trial it gives a device.
    trial.set_user_attr("recipe", raw)
    trial.set_user_attr("test", {name: {"accuracy": d.get("accuracy"), "passed": d.get("passed")} for name, d in report["devices"].items()})
    (out / "tuned-recipe.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return min((f["val_accuracy"] or 0.0) for f in figures.values())


def constraints(frozen) -> list[float]:
    return frozen.user_attrs.get("constraints", [1.0])


def run_study(spec_path: Path, out: Path | None = None, trials: int | None = None, time_limit: str | None = None, storage: str | None = None,
              password_file: Path | None = None, heartbeat: float = 10.0) -> dict:
    """Run (or resume) the study of `spec_path`; returns the summary also written to `tune.json`."""
    if not extras.installed("tune"):
        raise UserError(f"compress tune needs Optuna, which is not installed: {extras.pip_command(['tune'])}")
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's constraints_func: stable in use since Optuna 3
    recipe_raw, tune = load_spec(spec_path)
    trials = trials if trials is not None else tune.trials
    timeout = seconds(time_limit) if time_limit is not None else (seconds(tune.time) if tune.time else None)
    if trials is None and timeout is None:
        raise UserError("give --trials N or --time 2h (or trials/time in the spec's tune section)")
    folder = TuneFolder(Path(out) if out else Path("runs") / f"{recipe_raw.get('name', spec_path.stem)}-tune")
    folder.path.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=tune.seed, constraints_func=constraints)
    url = storage or folder.storage
    study = optuna.create_study(study_name=recipe_raw["name"], storage=open_storage(url, password_file, heartbeat), load_if_exists=True,
                                direction="maximize", sampler=sampler)
    space = json.dumps(tune.model_dump()["space"], sort_keys=True)
    if study.user_attrs.get("space", space) != space:
        raise UserError(f"the study '{recipe_raw['name']}' in {redacted(url)} searched another space; give another --out or --storage (or rename the spec)")
    study.set_user_attr("space", space)
    done = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    remaining = None if trials is None else max(0, trials - done)
    if done:
        log.info(f"tune: resuming study '{study.study_name}' with {done} finished trial(s)")
    if remaining != 0:
        study.optimize(
            lambda trial: run_trial(trial, recipe_raw, tune, folder, str(spec_path)), n_trials=remaining, timeout=timeout,
            catch=(UserError,), callbacks=[report_trial] + ([optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,))] if trials else []),
        )
    summary = summarize(study, folder)
    (folder.path / "tune.json").write_text(json.dumps(summary, indent=2))
    write_tune_markdown(summary, folder.path / "tune.md")
    return summary


def feasible(frozen) -> bool:
    return all(c <= 0 for c in constraints(frozen))


def report_trial(study, frozen) -> None:
    """One line per finished trial, with the best so far."""
    import optuna

    if frozen.state != optuna.trial.TrialState.COMPLETE:
        log.warning(f"tune trial {frozen.number}: {frozen.state.name.lower()}: {frozen.system_attrs.get('fail_reason', 'see its run folder')}")
        return
    finished = [t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)) if feasible(t)]
    best = max(finished, key=lambda t: t.value, default=None)
    verdict = "meets every budget" if feasible(frozen) else "breaks " + "; ".join(
        f"{d}: {', '.join(f['broken'])}" for d, f in frozen.user_attrs["devices"].items() if f["broken"])
    log.info(
        f"tune trial {frozen.number}: {json.dumps(frozen.user_attrs['values'])} -> val {frozen.value:.4f}, {verdict} on validation "
        f"({frozen.user_attrs['reused_stages']}/{frozen.user_attrs['stages']} stages reused, {frozen.user_attrs['seconds']:.0f} s); "
        + (f"best so far: trial {best.number}, val {best.value:.4f}" if best else "no trial meets every budget yet")
    )


def summarize(study, folder: TuneFolder) -> dict:
    """Per device, the best finished trial that meets every budget on validation (else the closest,
    said so); its test figures, read once now from its run; reuse and time over the study."""
    import optuna

    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    devices = sorted({d for t in finished for d in t.user_attrs["devices"]})
    picks = {}
    for device in devices:
        def rank(t):
            f = t.user_attrs["devices"][device]
            return (bool(f["passed_on_validation"]), -len(f["broken"]), f["val_accuracy"] or 0.0, -t.number)

        best = max((t for t in finished if device in t.user_attrs["devices"]), key=rank)
        shipped = best.user_attrs["test"][device]  # read now, once the trial is chosen on validation
        folder.tuned_recipe(device).write_text(yaml.safe_dump(best.user_attrs["recipe"], sort_keys=False))
        f = best.user_attrs["devices"][device]
        picks[device] = {
            "trial": best.number, "values": best.user_attrs["values"], "meets_every_budget_on_validation": bool(f["passed_on_validation"]),
            "broken_on_validation": f["broken"], "artifact": f["artifact"], "val_accuracy": f["val_accuracy"],
            "test_accuracy": shipped.get("accuracy"), "test_passed": shipped.get("passed"), "recipe": str(folder.tuned_recipe(device)),
        }
    stages = sum(t.user_attrs["stages"] for t in finished)
    reused = sum(t.user_attrs["reused_stages"] for t in finished)
    return {
        "study": study.study_name, "trials": {"complete": len(finished), "all": len(study.trials)},
        "chosen_on": "validation", "devices": picks,
        "stage_reuse": {"stages": stages, "reused": reused, "rate": round(reused / stages, 4) if stages else 0.0, "store_bytes": folder.store.size_bytes()},
        "seconds": round(sum(t.user_attrs["seconds"] for t in finished), 1),
        "rows": [{"trial": t.number, "values": t.user_attrs["values"], "score": t.value, "devices": t.user_attrs["devices"],
                  "reused_stages": t.user_attrs["reused_stages"], "seconds": t.user_attrs["seconds"]} for t in finished],
    }
