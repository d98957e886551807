"""What a study searches beyond the default: a pruner stopping poor trials on their validation
figures where each schedule ends (epochs numbered over the whole recipe, replayed by reused stages), a Pareto objective
with NSGA-II, trials queued first, a study of another search refused, and the disk given back."""

import json

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe
from pipeline.tune.search import TrialFeed
from tests.core.feed_recorder import Recorder
from tests.tune.specs import tiny_spec

pytest.importorskip("optuna")


def tune(*args):
    return CliRunner().invoke(main, ["tune", *map(str, args)])


def with_tune(path, **tune_section):
    raw = yaml.safe_load(path.read_text())
    raw["tune"].update(tune_section)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_every_epoch_is_numbered_over_the_recipe_and_a_resumed_run_replays_the_same_figures(tmp_path, lenient_device):
    raw = yaml.safe_load(tiny_spec(tmp_path, lenient_device).read_text())
    raw.pop("tune")
    raw["stages"][0]["train"]["epochs"] = 2
    recipe = parse_recipe(raw, "test")
    fresh, resumed = Recorder(), Recorder()
    run_recipe(recipe, tmp_path / "run", quiet=True, listener=fresh)
    run_recipe(recipe, tmp_path / "run", quiet=True, listener=resumed)
    assert [(kind, step) for kind, step, _ in fresh.told] == [("epoch", 1), ("epoch", 2), ("end", 2), ("epoch", 3), ("end", 3)], (
        "train's 2 epochs and its end, then prune's one recovery epoch and its end")
    assert fresh.told[2][2] == fresh.told[1][2], "no early stopping: a schedule ends with its last epoch's figure"
    assert resumed.told == fresh.told, "a finished stage tells what it recorded, exactly, in the same order"


def test_the_pruner_reads_a_trials_figure_only_where_its_schedule_ends():
    import optuna

    trial = optuna.create_study().ask()
    feed = TrialFeed(trial, pruning=True)
    feed.epoch(1, 0.30)
    feed.epoch(2, 0.40)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {}, "mid-schedule: not reported"
    feed.schedule_end(2, 0.40)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {2: 0.40}
    TrialFeed(trial, pruning=False).schedule_end(3, 0.50)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {2: 0.40}, "no pruner: nothing reported"


def test_the_pruner_stops_a_trial_whose_first_epoch_falls_behind(tmp_path, lenient_device):
    path = with_tune(tiny_spec(tmp_path, lenient_device, space={"train.lr": {"float": [1e-7, 0.05], "log": True}}, trials=2),
                     pruner="asha", reduction_factor=2, first=[{"train.lr": 0.01}, {"train.lr": 1e-7}])
    out = tmp_path / "tune"
    done = tune(path, "--out", out)
    assert done.exit_code == 0, done.output
    assert "tune trial 1: " in done.output and "stopped after epoch 1 by the pruner" in done.output
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"]["pruned"] == 1 and summary["pruner"] == "asha"
    assert [r["trial"] for r in summary["rows"]] == [0] and summary["trials"]["all"] == 2, "a stopped trial counts among the 2"
    assert not (out / "trials" / "trial-0001" / "report.json").exists() or json.loads(
        (out / "trials" / "trial-0001" / "report.json").read_text())["stages"][0]["status"] == "failed", "stopped inside train"


def test_a_pruner_asked_for_over_a_searched_schedule_is_warned_about(tmp_path, lenient_device):
    path = with_tune(tiny_spec(tmp_path, lenient_device, space={"prune.finetune.epochs": {"int": [1, 2]}}, trials=1), pruner="asha")
    done = tune(path, "--out", tmp_path / "tune")
    assert done.exit_code == 0, done.output
    assert "tune.pruner: asha compares trials where their schedules end, but the space searches prune.finetune.epochs" in done.output


def test_a_pareto_study_keeps_each_devices_front_and_draws_it(tmp_path, lenient_device):
    path = with_tune(tiny_spec(tmp_path, lenient_device, trials=3), objective="pareto-latency")
    out = tmp_path / "tune"
    done = tune(path, "--out", out)
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "tune.json").read_text())
    assert (summary["objective"], summary["sampler"], summary["pruner"]) == ("pareto-latency", "nsga2", "none")
    for device in ("lenient", "raspberry-pi-4"):
        front = summary["pareto_fronts"][device]["latency_p50_ms"]
        rows = {r["trial"]: r["devices"][device] for r in summary["rows"]}
        assert front and all(n in rows for n in front)
        best = max(rows.values(), key=lambda f: f["val_accuracy"])
        assert any(rows[n]["val_accuracy"] == best["val_accuracy"] for n in front), "the most accurate trial is on the front"
    page = (out / "tune.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Pareto front for lenient" in page


def test_a_study_of_another_search_is_refused_and_a_clean_keeps_what_the_picks_need(tmp_path, lenient_device):
    path, out = tiny_spec(tmp_path, lenient_device, trials=2), tmp_path / "tune"
    assert tune(path, "--out", out).exit_code == 0
    other = with_tune(tiny_spec(tmp_path, lenient_device, space={"prune.target.keep_macs": {"float": [0.5, 0.9]}}, trials=2))
    refused = tune(other, "--out", out)
    assert refused.exit_code == 1 and "searched another space or objective (the paths that differ: prune.target.keep_macs)" in refused.output
    refused = tune(with_tune(tiny_spec(tmp_path, lenient_device, trials=2), objective="pareto-size"), "--out", out)
    assert refused.exit_code == 1 and "objective metric, this spec pareto-size" in refused.output
    picked = {p["trial"] for p in json.loads((out / "tune.json").read_text())["devices"].values()}
    cleaned = CliRunner().invoke(main, ["tune-clean", str(out)])
    assert cleaned.exit_code == 0 and "freed " in cleaned.output, cleaned.output
    assert not (out / "stage-store").exists() and {p.name for p in (out / "trials").iterdir()} == {f"trial-{n:04d}" for n in picked}
    assert (out / "study.db").exists() and all((out / "trials" / f"trial-{n:04d}" / "report.json").exists() for n in picked)
    more = tune(tiny_spec(tmp_path, lenient_device, trials=3), "--out", out)  # the study resumes; a shared stage is made again
    assert more.exit_code == 0, more.output
    assert json.loads((out / "tune.json").read_text())["trials"]["complete"] == 3
    nowhere = CliRunner().invoke(main, ["tune-clean", str(tmp_path)])
    assert nowhere.exit_code == 1 and "no tune.json here" in nowhere.output


def test_a_model_limit_no_trial_meets_is_said_per_device_with_the_closest_trial(tmp_path, lenient_device):
    path = with_tune(tiny_spec(tmp_path, lenient_device, trials=1), limits={"max_params": 100})
    done = tune(path, "--out", tmp_path / "tune")
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp_path / "tune" / "tune.json").read_text())
    lenient = summary["devices"]["lenient"]
    assert not lenient["meets_every_budget_on_validation"] and lenient["broken_on_validation"] == ["max_params"]
    assert summary["rows"][0]["model"]["params"] > 100 and "closest: breaks max_params" in done.output


def test_a_trial_that_fails_is_one_bad_point_and_the_study_goes_on(tmp_path, lenient_device):
    path = with_tune(tiny_spec(tmp_path, lenient_device, space={"train.lr": {"float": [0.001, 1e9], "log": True}}, trials=2),
                     pruner="none", first=[{"train.lr": 1e9}, {"train.lr": 0.01}])
    done = tune(path, "--out", tmp_path / "tune")
    assert done.exit_code == 0, done.output
    assert "tune trial 0: failed" in done.output and "lower the learning rate" in done.output
    summary = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert [r["trial"] for r in summary["rows"]] == [1, 2] and summary["devices"]["lenient"]["trial"] != 0
    assert summary["trials"] == {"complete": 2, "pruned": 0, "all": 3}, "the failed trial was replaced: the study holds the 2 asked for"
    again = tune(path, "--out", tmp_path / "tune")
    assert again.exit_code == 0 and "tune trial" not in again.output, "a second run finds nothing left to do"


def test_failures_in_a_row_stop_the_study_and_say_why(tmp_path, lenient_device, monkeypatch):
    from pipeline.tune import study

    monkeypatch.setattr(study.StopAfterFailures, "LIMIT", 2)
    path = with_tune(tiny_spec(tmp_path, lenient_device, space={"train.lr": {"float": [1e8, 1e9], "log": True}}, trials=6), pruner="none")
    done = tune(path, "--out", tmp_path / "tune")
    assert "2 trials in a row failed, the last with:" in done.output and "the study stops" in done.output
    assert len(list((tmp_path / "tune" / "trials").iterdir())) == 2, "no third trial was started"


def test_a_model_over_the_limits_is_refused_before_training_when_no_stage_removes_channels(tmp_path, lenient_device):
    path = tiny_spec(tmp_path, lenient_device, space={"model.kwargs.widths": {"choice": [[32, 32, 64, 64], [8, 8, 16, 16]]}}, trials=2)
    raw = yaml.safe_load(path.read_text())
    raw["stages"] = [s for s in raw["stages"] if "prune" not in s]  # nothing can shrink the model once built
    raw["tune"].update(limits={"max_params": 10_000}, first=[{"model.kwargs.widths": [32, 32, 64, 64]}, {"model.kwargs.widths": [8, 8, 16, 16]}])
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = tune(path, "--out", tmp_path / "tune")
    assert done.exit_code == 0, done.output
    assert "pruned: the model as built breaks max_params (65,834 > 10,000); no stage of the recipe removes channels" in done.output, done.output
    assert not (tmp_path / "tune" / "trials" / "trial-0000" / "01-train").exists(), "the oversized model was not trained"
    assert (tmp_path / "tune" / "trials" / "trial-0001" / "01-train").is_dir()
    summary = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert summary["trials"]["pruned"] == 1 and summary["devices"]["lenient"]["trial"] == 1


def test_a_model_over_the_limits_is_still_trained_when_a_stage_may_remove_channels(tmp_path, lenient_device):
    path = with_tune(tiny_spec(tmp_path, lenient_device, trials=1), limits={"max_params": 1_000}, pruner="none")
    done = tune(path, "--out", tmp_path / "tune")
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "tune" / "tune.json").read_text())["trials"] == {"complete": 1, "pruned": 0, "all": 1}


def test_a_trial_running_when_the_studys_time_runs_out_stops_at_its_next_epoch():
    import time

    import optuna

    trial = optuna.create_study().ask()
    TrialFeed(trial, pruning=False, deadline=time.monotonic() + 60).epoch(1, 0.5)  # time left: it goes on
    with pytest.raises(optuna.TrialPruned, match="time ran out during epoch 2"):
        TrialFeed(trial, pruning=False, deadline=time.monotonic() - 1).epoch(2, 0.5)



def test_tpe_draws_as_many_random_trials_as_the_spec_says():
    """`startup_trials` reaches Optuna's TPE: a study of a few long trials can start modelling early."""
    from pipeline.tune.search import make_sampler
    from pipeline.tune.spec import TuneConfig

    space = {"train.lr": {"float": [0.001, 0.1]}}
    assert make_sampler(TuneConfig.model_validate({"space": space, "trials": 8, "startup_trials": 3}), None)._n_startup_trials == 3


def test_the_tune_report_names_only_what_can_stop_a_trial():
    from pipeline.tune.tune_report import stop_reasons

    assert stop_reasons("none") == "the study's time or a model over its limits"
    assert stop_reasons("hyperband") == "by the hyperband pruner, the study's time or a model over its limits"
