"""What a study says as it goes and when it ends: one line per trial with the best so far, a stop
after failures in a row, and the summary (per device the trial it gets, its test figures read only
then, the Pareto fronts, the fields that mattered, the reuse and the time).
"""

from __future__ import annotations

import json
import logging
import warnings

import yaml

from pipeline.tune.picks import feasible, pareto_front, pick
from pipeline.tune.spec import TuneConfig
from pipeline.tune.tune_folder import TuneFolder

log = logging.getLogger("compress")


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

    if frozen.state == optuna.trial.TrialState.PRUNED and frozen.last_step is None:
        log.info(f"tune trial {frozen.number}: {json.dumps(frozen.user_attrs.get('values', frozen.params))} pruned: "
                 f"{frozen.user_attrs.get('pruned_because', 'before its first epoch')}")
        return
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
        folder.tuned_recipe(device).write_text(tuned_recipe_text(chosen, device, study.study_name))
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


def tuned_recipe_text(chosen, device: str, study_name: str) -> str:
    """The chosen trial's recipe as plain YAML, headed by where it comes from and what its `ship` means."""
    header = f"# compress tune: trial {chosen.number} of study {study_name}, chosen for {device} on the validation split.\n"
    if chosen.user_attrs.get("pins_files"):
        header += ("# validate.ship pins the file that trial shipped to each device, so `compress run` of this recipe ships the\n"
                   "# files the study scored; drop it to let each run choose again by its own timing.\n")
    return header + yaml.safe_dump(chosen.user_attrs["recipe"], sort_keys=False)


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
