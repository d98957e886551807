"""Run a tune study: trials as run folders, stage reuse, and per device the best trial on validation.

A trial's score is the lowest, over the recipe's devices, of the recipe metric on the validation
split of the file validate would ship to that device; its constraints are the budgets each device's
file breaks on validation (Optuna's TPE sampler steers away from trials that break any). Test-split
figures are read only after the study, for the trial each device is given.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.core import extras
from exporters import ParityError
from pipeline.core.errors import UserError
from pipeline.deploy.profiles import load_profile
from pipeline.core.run_folder import RunFolder, StageFolder
from pipeline.core.run_log import console_quiet
from pipeline.recipe import parse_recipe, read_yaml
from pipeline.runner import run_recipe, stage_fingerprints
from pipeline.tune.spec import Param, TuneConfig, check_space, seconds, split_spec, with_values
from pipeline.tune.stage_store import StageStore
from pipeline.tune.storage import open_storage, redacted
from pipeline.tune.picks import broken_limits, feasible, pareto_front, pick
from pipeline.tune.search import directions, epoch_reporter, make_pruner, make_sampler, objective_values
from pipeline.tune.tune_report import write_tune_html, write_tune_markdown

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


def run_trial(trial, recipe_raw: dict, tune: TuneConfig, folder: TuneFolder, source: str) -> float | list[float]:
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
            report = run_recipe(recipe, out, quiet=True, after_epoch=epoch_reporter(trial, tune.pruner_name != "none"))
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
    trial.set_user_attr("recipe", raw)
    trial.set_user_attr("test", {name: {"accuracy": d.get("accuracy"), "passed": d.get("passed")} for name, d in report["devices"].items()})
    (out / "tuned-recipe.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return score if tune.pareto else score[0]


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
    url = storage or folder.storage
    study = open_study(recipe_raw["name"], tune, len(recipe_raw["devices"]), open_storage(url, password_file, heartbeat), redacted(url))
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # a trial the pruner stopped counts: it was decided
    done = len(study.get_trials(states=counted))
    remaining = None if trials is None else max(0, trials - done)
    if done:
        log.info(f"tune: resuming study '{study.study_name}' with {done} trial(s) done")
    if remaining != 0:
        study.optimize(
            lambda trial: run_trial(trial, recipe_raw, tune, folder, str(spec_path)), n_trials=remaining, timeout=timeout,
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


class StopAfterFailures:
    """A trial that fails (its INT8 file disagrees with the float one, its loss diverges at the learning
    rate drawn) is one bad point of the space: the study goes on. Failures in a row, though, say the
    trouble is not the point drawn (a full disk, a broken recipe): the study stops and says so."""

    LIMIT = 5

    def __init__(self):
        self.in_a_row = 0

    def __call__(self, study, frozen) -> None:
        import optuna

        self.in_a_row = self.in_a_row + 1 if frozen.state == optuna.trial.TrialState.FAIL else 0
        if self.in_a_row >= self.LIMIT:
            log.error(f"tune: {self.LIMIT} trials in a row failed, the last with: {frozen.user_attrs.get('error', '?')}; "
                      "the study stops (each trial's run.log says more)")
            study.stop()


def report_trial(study, frozen) -> None:
    """One line per finished trial, with the best so far."""
    import optuna

    if frozen.state == optuna.trial.TrialState.PRUNED:
        log.info(f"tune trial {frozen.number}: {json.dumps(frozen.user_attrs.get('values', frozen.params))} stopped after epoch "
                 f"{frozen.last_step} by the pruner (val {frozen.intermediate_values.get(frozen.last_step, float('nan')):.4f})")
        return
    if frozen.state != optuna.trial.TrialState.COMPLETE:
        log.warning(f"tune trial {frozen.number}: failed: {frozen.user_attrs.get('error', 'see its run.log')} ({json.dumps(frozen.user_attrs.get('values', frozen.params))})")
        return
    finished = [row(t) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    best = max((r for r in finished if feasible(r)), key=lambda r: r["score"], default=None)
    this = row(frozen)
    verdict = "meets every budget" if feasible(this) else "breaks " + "; ".join(
        f"{d}: {', '.join(f['broken'])}" for d, f in this["devices"].items() if f["broken"])
    log.info(
        f"tune trial {frozen.number}: {json.dumps(this['values'])} -> val {this['score']:.4f}, {verdict} on validation "
        f"({this['reused_stages']}/{frozen.user_attrs['stages']} stages reused, {this['seconds']:.0f} s); "
        + (f"best so far: trial {best['trial']}, val {best['score']:.4f}" if best else "no trial meets every budget yet")
    )


def row(frozen) -> dict:
    """A finished trial as the summary, the picks and the report read it: validation figures only."""
    attrs = frozen.user_attrs
    return {"trial": frozen.number, "values": attrs["values"], "score": attrs["score"], "devices": attrs["devices"], "model": attrs.get("model", {}),
            "reused_stages": attrs["reused_stages"], "seconds": attrs["seconds"], "worker_rss_mb": attrs.get("worker_rss_mb")}


def summarize(study, folder: TuneFolder, tune: TuneConfig) -> dict:
    """Per device, the best finished trial that meets every budget on validation (else the closest,
    said so); its test figures, read once now from the study; each device's Pareto fronts;
    parameter importances; reuse and time over the study."""
    import optuna

    finished = {t.number: t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    rows = [row(t) for t in finished.values()]
    devices = list(dict.fromkeys(d for r in rows for d in r["devices"]))
    picks, fronts = {}, {}
    for device in devices:
        best = pick(rows, device)
        chosen = finished[best["trial"]]
        shipped = chosen.user_attrs["test"][device]  # read now, once the trial is chosen on validation
        folder.tuned_recipe(device).write_text(yaml.safe_dump(chosen.user_attrs["recipe"], sort_keys=False))
        f = best["devices"][device]
        picks[device] = {
            "trial": best["trial"], "values": best["values"], "meets_every_budget_on_validation": not f["broken"],
            "broken_on_validation": f["broken"], "artifact": f["artifact"], "val_accuracy": f["val_accuracy"],
            "test_accuracy": shipped.get("accuracy"), "test_passed": shipped.get("passed"), "recipe": str(folder.tuned_recipe(device)),
        }
        fronts[device] = {figure: [r["trial"] for r in pareto_front(rows, device, figure) if r["devices"][device][figure] is not None]
                          for figure in ("latency_p50_ms", "size_kib")}
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    started = [*finished.values(), *pruned]  # a pruned trial reused stages too, up to where it was stopped
    stages = sum(t.user_attrs.get("stages", 0) for t in started)
    reused = sum(t.user_attrs.get("reused_stages", 0) for t in started)
    return {
        "study": study.study_name, "objective": tune.objective, "sampler": tune.sampler_name, "pruner": tune.pruner_name,
        "trials": {"complete": len(rows), "pruned": len(pruned), "all": len(study.trials)},
        "chosen_on": "validation", "devices": picks, "pareto_fronts": fronts, "importances": importances(study),
        "stage_reuse": {"stages": stages, "reused": reused, "rate": round(reused / stages, 4) if stages else 0.0, "store_bytes": folder.store.size_bytes(),
                        "seconds_saved": round(sum(t.user_attrs.get("reused_seconds", 0.0) for t in started), 1)},
        "seconds": round(sum(r["seconds"] for r in rows) + sum(t.duration.total_seconds() for t in pruned if t.duration), 1),
        "rows": rows,
    }


def importances(study) -> dict[str, float]:
    """How much each searched field moved the score (Optuna's PED-ANOVA over the finished trials);
    empty while there are too few trials to say."""
    import optuna

    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 4:
        return {}
    try:
        with warnings.catch_warnings():  # it warns that it ranks fields by how they reach a LOW target: hence the minus
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=lambda t: -t.user_attrs["score"])
    except (ValueError, RuntimeError, ZeroDivisionError):  # every trial alike on a field, or too few to split: nothing to say
        log.debug("no parameter importances", exc_info=True)
        return {}
    return {name: round(float(value), 4) for name, value in found.items()}
