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
from pathlib import Path

from exporters import ParityError
from pipeline.core import extras
from pipeline.core.errors import UserError
from pipeline.recipe import parse_recipe, read_yaml
from pipeline.tune.search import directions, make_pruner, make_sampler
from pipeline.tune.spec import TuneConfig, check_space, seconds, split_spec
from pipeline.tune.storage import open_storage, redacted
from pipeline.tune.study_summary import StopAfterFailures, report_trial, summarize
from pipeline.tune.trial import run_trial
from pipeline.tune.tune_folder import TuneFolder
from pipeline.tune.tune_report import write_tune_html, write_tune_markdown

log = logging.getLogger("compress")


def load_spec(path: Path) -> tuple[dict, TuneConfig]:
    recipe, tune = split_spec(read_yaml(path, "tune spec"), str(path))
    base = parse_recipe(recipe, str(path))
    if not base.stages or base.stages[-1].name != "validate" or not base.header.devices:
        raise UserError(f"{path}: a tuned recipe must end with a validate stage and name its devices: the study scores what each device would ship")
    check_space(recipe, tune, lambda r: parse_recipe(r, f"{path} (a trial)"))
    return recipe, tune


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
    if tune.pruner_caveat:
        log.warning(tune.pruner_caveat)
    trials = trials if trials is not None else tune.trials
    timeout = seconds(time_limit) if time_limit is not None else (seconds(tune.time) if tune.time else None)
    if trials is None and timeout is None:
        raise UserError("give --trials N or --time 2h (or trials/time in the spec's tune section)")
    folder = TuneFolder(Path(out) if out else Path("runs") / f"{recipe_raw.get('name', spec_path.stem)}-tune")
    folder.path.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or folder.storage
    study = open_study(recipe_raw["name"], tune, len(recipe_raw["devices"]), open_storage(url, password_file, heartbeat), redacted(url))
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # a trial the pruner stopped counts: it was decided
    done = len(study.get_trials(states=counted))
    remaining = None if trials is None else max(0, trials - done)
    if done:
        log.info(f"tune: resuming study '{study.study_name}' with {done} trial(s) done")
    if remaining != 0:
        deadline = None if timeout is None else time.monotonic() + timeout  # a running trial stops at its next epoch past it
        # No n_trials: the callback below ends the study once it holds `trials` decided ones (over every
        # worker sharing it), so a failed trial (a point whose loss diverged) is replaced by another draw
        # instead of leaving the study one short for a later run to top up.
        study.optimize(
            lambda trial: run_trial(trial, recipe_raw, tune, folder, str(spec_path), deadline), n_trials=None, timeout=timeout,
            catch=(UserError, ParityError), callbacks=[report_trial, StopAfterFailures()]
            + ([optuna.study.MaxTrialsCallback(trials, states=counted)] if trials else []),
        )
    summary = summarize(study, folder, tune)
    (folder.path / "tune.json").write_text(json.dumps(summary, indent=2))
    write_tune_markdown(summary, folder.path / "tune.md")
    write_tune_html(summary, folder.path / "tune.html")
    return summary


def open_study(name: str, tune: TuneConfig, devices: int, storage, where: str):
    """Create the study, or load it to resume or to join other workers. A study of that name that
    searched another space or objective is refused rather than mixed with this one. On a new study
    the spec's `first` trials are queued before the sampler's."""
    import optuna

    search = json.dumps({"space": tune.model_dump()["space"], "objective": tune.objective}, sort_keys=True)
    try:
        study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True, directions=directions(tune, ["d"] * devices),
                                    sampler=make_sampler(tune, constraints), pruner=make_pruner(tune))
    except RuntimeError as e:  # e.g. a database written by another Optuna version
        raise UserError(f"the study storage {where} cannot be used: {str(e).splitlines()[0]}") from None
    held = study.user_attrs.get("search")
    if held is not None and held != search or held is None and study.trials:
        raise UserError(
            f"the study '{name}' in {where} searched another space or objective ({_difference(held, search)}); "
            "give another --out or --storage, or rename the spec, to start a new study")
    if held is None:
        study.set_user_attr("search", search)
        for values in tune.first:
            study.enqueue_trial({path: json.dumps(v) if tune.space[path].choice is not None else v for path, v in values.items()}, skip_if_exists=True)
    return study


def _difference(held: str | None, wanted: str) -> str:
    if held is None:
        return "its trials were made by something else than this spec"
    before, now = json.loads(held), json.loads(wanted)
    if before["objective"] != now["objective"]:
        return f"objective {before['objective']}, this spec {now['objective']}"
    changed = sorted(set(before["space"]) ^ set(now["space"]) | {p for p in set(before["space"]) & set(now["space"]) if before["space"][p] != now["space"][p]})
    return "the paths that differ: " + ", ".join(changed)
