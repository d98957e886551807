"""`compress tune` on a tiny space (embedded data, one epoch): trials run as run folders, the shared
first stages run once, each device gets its best trial on validation within its budgets, the written
recipe reproduces that trial, and a tune run again resumes its study instead of starting over."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from tests.tune.specs import tiny_spec

pytest.importorskip("optuna")


def spec(tmp_path, lenient_device, space=None, trials=3, quantize=False) -> Path:
    return tiny_spec(tmp_path, lenient_device, space=space, trials=trials, quantize=quantize)


def tune(*args):
    return CliRunner().invoke(main, ["tune", *map(str, args)])


def test_trials_share_their_first_stages_and_each_device_gets_its_best_on_validation(tmp_path, lenient_device):
    out = tmp_path / "tune"
    done = tune(spec(tmp_path, lenient_device), "--out", out)
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"]["complete"] == 3 and summary["chosen_on"] == "validation"
    reports = [json.loads((out / "trials" / f"trial-{n:04d}" / "report.json").read_text()) for n in range(3)]
    assert [r["stages"][0]["status"] for r in reports] == ["ran", "resumed", "resumed"], "the base trains once"
    assert [r["stages"][1]["status"] for r in reports] == ["ran", "ran", "ran"], "each trial prunes to its own target"
    assert summary["stage_reuse"] == {**summary["stage_reuse"], "stages": 12, "reused": 2}
    lenient = summary["devices"]["lenient"]
    rows = {row["trial"]: row for row in summary["rows"]}
    meeting = [n for n, row in rows.items() if row["devices"]["lenient"]["passed_on_validation"]]
    assert lenient["meets_every_budget_on_validation"] and lenient["trial"] in meeting
    assert lenient["val_accuracy"] == max(rows[n]["devices"]["lenient"]["val_accuracy"] for n in meeting)
    assert lenient["test_accuracy"] == reports[lenient["trial"]]["devices"]["lenient"]["accuracy"]
    pi = summary["devices"]["raspberry-pi-4"]  # 85 % in one epoch: out of reach, so the closest, said so
    assert not pi["meets_every_budget_on_validation"] and "min_accuracy" in pi["broken_on_validation"]
    assert "closest: breaks min_accuracy" in done.output and done.output.count("tune trial ") == 3, "one line per trial"
    markdown = (out / "tune.md").read_text()
    assert "| lenient | " in markdown and "Stage reuse: 2 of 12 stages came from the store" in markdown and markdown.count("\n| 2 | ") == 1


def test_the_tuned_recipe_reproduces_its_trial_and_a_second_tune_resumes_the_study(tmp_path, lenient_device):
    """With an INT8 twin beside each FP32 file, the tuned recipe pins the file the trial shipped to
    each device (`validate.ship`): a run's own timing of two close files could ship the other."""
    path, out = spec(tmp_path, lenient_device, trials=2, quantize=True), tmp_path / "tune"
    assert tune(path, "--out", out).exit_code == 0
    summary = json.loads((out / "tune.json").read_text())
    pick = summary["devices"]["lenient"]
    trial = next(r for r in summary["rows"] if r["trial"] == pick["trial"])
    text = Path(pick["recipe"]).read_text()
    assert text.startswith(f"# compress tune: trial {pick['trial']} of study tiny-tune, chosen for lenient on the validation split.\n"
                           "# validate.ship pins the file that trial shipped to each device")
    validate = next(s["validate"] for s in yaml.safe_load(text)["stages"] if "validate" in s)
    assert validate["ship"] == {device: f["artifact"] for device, f in trial["devices"].items()} and set(validate["ship"]) == {"lenient", "raspberry-pi-4"}
    run = CliRunner().invoke(main, ["run", pick["recipe"], "--out", str(tmp_path / "again"), "--quiet"])
    assert run.exit_code == 0, run.output
    again = json.loads((tmp_path / "again" / "report.json").read_text())["devices"]["lenient"]
    assert (again["val_accuracy"], again["accuracy"], again["artifact"]) == (pick["val_accuracy"], pick["test_accuracy"], pick["artifact"])
    assert tune(path, "--out", out).exit_code == 0  # the study already holds 2 finished trials: none more
    assert json.loads((out / "tune.json").read_text())["trials"]["complete"] == 2
    assert tune(path, "--out", out, "--trials", 3).exit_code == 0
    assert json.loads((out / "tune.json").read_text())["trials"]["complete"] == 3 and (out / "trials" / "trial-0002").is_dir()


def test_a_space_over_a_field_the_recipe_lacks_is_refused_with_the_closest_paths(tmp_path, lenient_device):
    refused = tune(spec(tmp_path, lenient_device, {"prune.target.keep_mac": {"float": [0.4, 0.9]}}), "--out", tmp_path / "t")
    assert refused.exit_code == 1 and "tune.space.prune.target.keep_mac = 0.4 does not give a valid recipe" in refused.output
    assert "closest paths: prune.target.keep_macs" in refused.output and "Traceback" not in refused.output
    refused = tune(spec(tmp_path, lenient_device, {"distill.epochs": {"int": [1, 2]}}), "--out", tmp_path / "t")
    assert refused.exit_code == 1 and "the recipe has no stage 'distill'" in refused.output
    refused = tune(spec(tmp_path, lenient_device, {"train.epochs": {"int": [3, 1]}}), "--out", tmp_path / "t")
    assert refused.exit_code == 1 and "low 3 is above high 1" in refused.output
    assert not (tmp_path / "t" / "trials").exists(), "refused before any trial"


def test_the_one_line_form_writes_the_default_space_as_a_spec_it_resumes_from(tmp_path, monkeypatch):
    from pipeline.tune import study

    ran = []
    monkeypatch.setattr(study, "run_study", lambda spec, out, *rest: ran.append((spec, out)) or {"devices": {}, "stage_reuse": {"reused": 0, "stages": 0, "rate": 0, "seconds_saved": 0}, "trials": {"complete": 0, "pruned": 0}})
    done = tune("--model", "tiny_cnn", "--data", "embedded", "--device", "raspberry-pi-4", "--device", "intel-n100", "--time", "2h", "--out", tmp_path / "t")
    assert done.exit_code == 0, done.output
    written = yaml.safe_load((tmp_path / "t" / "spec.yaml").read_text())
    assert written["data"] == {"source": "embedded"} and written["model"] == {"name": "tiny_cnn"} and written["devices"] == ["raspberry-pi-4", "intel-n100"]
    assert set(written["tune"]["space"]) == {"train.epochs", "train.lr", "prune.target.keep_macs", "prune.finetune.epochs", "quantize.method"}
    assert written["tune"]["time"] == "2h" and ran == [(tmp_path / "t" / "spec.yaml", tmp_path / "t")]
    from pipeline.tune.study import load_spec

    load_spec(tmp_path / "t" / "spec.yaml")  # a valid spec: every value of the space gives a valid recipe
    assert tune("--model", "tiny_cnn", "--device", "host").exit_code == 1
    both = tune(tmp_path / "t" / "spec.yaml", "--model", "tiny_cnn")
    assert both.exit_code == 1 and "not both" in both.output


def test_the_one_line_form_takes_a_model_budget_as_a_count(tmp_path, monkeypatch):
    from pipeline.tune import study
    from pipeline.tune.study import load_spec

    monkeypatch.setattr(study, "run_study", lambda spec, out, *rest: {"devices": {}, "stage_reuse": {"reused": 0, "stages": 0, "rate": 0, "seconds_saved": 0}, "trials": {"complete": 0, "pruned": 0}})
    done = tune("--model", "tiny_cnn", "--data", "embedded", "--device", "host", "--max-macs", "1.2M", "--max-params", "15k", "--trials", 2, "--out", tmp_path / "t")
    assert done.exit_code == 0, done.output
    written = yaml.safe_load((tmp_path / "t" / "spec.yaml").read_text())
    prune = next(s["prune"] for s in written["stages"] if "prune" in s)
    assert prune["target"] == {"max_macs": 1_200_000} and written["tune"]["limits"] == {"max_macs": 1_200_000, "max_params": 15_000}
    assert "prune.target.keep_macs" not in written["tune"]["space"] and "prune.finetune.epochs" in written["tune"]["space"]
    load_spec(tmp_path / "t" / "spec.yaml")
    done = tune("--model", "tiny_cnn", "--data", "embedded", "--device", "host", "--max-params", "14862", "--trials", 2, "--out", tmp_path / "p")
    assert done.exit_code == 0, done.output
    written = yaml.safe_load((tmp_path / "p" / "spec.yaml").read_text())
    assert next(s["prune"] for s in written["stages"] if "prune" in s)["target"] == {"max_params": 14862}
    for bad in ("8X", "0", "-3M", "nan", "inf", ""):
        refused = tune("--model", "tiny_cnn", "--data", "embedded", "--device", "host", "--max-macs", bad, "--out", tmp_path / "b")
        assert refused.exit_code == 1 and f"--max-macs {bad!r}: give a count of at least 1" in refused.output, (bad, refused.output)
    both = tune(tmp_path / "t" / "spec.yaml", "--max-macs", "8M")
    assert both.exit_code == 1 and "not both" in both.output and "tune.limits" in both.output

