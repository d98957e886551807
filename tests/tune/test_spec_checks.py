"""The tune's checks and choices as plain functions, fast enough for mutation testing: the spec's
ranges, paths and queued trials; which trial each device gets, and each device's Pareto front, from
validation figures only."""

import pytest

from pipeline.core.errors import UserError
from pipeline.tune.picks import feasible, pareto_front, pick, rank
from pipeline.tune.spec import Param, TuneConfig, check_space, seconds, with_values


def test_field_paths_reach_header_fields_stages_by_name_and_by_position():
    recipe = {"name": "x", "model": {"name": "tiny_cnn"}, "stages": [{"train": {"epochs": 2}}, "export", {"prune": None}, {"train": {"epochs": 1}}]}
    got = with_values(recipe, {"train.epochs": 5, "stages.3.train.lr": 0.1, "prune.target.keep_macs": 0.5, "model.kwargs.widths": [8, 8], "stages.1.export.opset": 18})
    assert got == {"name": "x", "model": {"name": "tiny_cnn", "kwargs": {"widths": [8, 8]}}, "stages": [
        {"train": {"epochs": 5}}, {"export": {"opset": 18}}, {"prune": {"target": {"keep_macs": 0.5}}}, {"train": {"epochs": 1, "lr": 0.1}}]}
    assert recipe["stages"][1] == "export", "the spec's recipe itself is left as it was"
    with pytest.raises(UserError, match="name a field of it"):
        with_values(recipe, {"train": 1})
    with pytest.raises(UserError, match="no stage 'train' at position 1"):
        with_values(recipe, {"stages.1.train.epochs": 1})


def test_a_tune_section_needs_a_budget_and_valid_ranges():
    with pytest.raises(ValueError, match="give trials: N and/or time: 2h"):
        TuneConfig(space={"train.epochs": {"int": [1, 2]}})
    with pytest.raises(ValueError, match="log: true needs a numeric range above 0"):
        TuneConfig(trials=1, space={"train.lr": {"float": [0, 1], "log": True}})
    with pytest.raises(ValueError, match="exactly one of"):
        TuneConfig(trials=1, space={"train.lr": {"float": [0.1, 1], "int": [1, 2]}})
    with pytest.raises(ValueError, match="write a number with s, m or h"):
        TuneConfig(time="soon", space={"train.lr": {"float": [0.1, 1]}})
    assert TuneConfig(time="2h", space={"train.lr": {"choice": [0.1]}}).trials is None
    check_space({"stages": [{"train": {}}]}, TuneConfig(trials=1, space={"train.epochs": {"int": [1, 2]}}), lambda r: r)


def test_a_space_that_searches_the_schedule_is_not_pruned_by_default_and_asking_for_a_pruner_is_warned():
    rest = {"train.lr": {"float": [0.001, 0.1]}, "prune.target.keep_macs": {"float": [0.3, 0.9]}}
    for path in ("train.epochs", "prune.finetune.epochs", "stages.1.prune.steps"):
        tune = TuneConfig(trials=1, space={**rest, path: {"int": [1, 3]}})
        assert tune.schedule_paths == [path] and tune.pruner_name == "none" and tune.pruner_caveat is None
        assert TuneConfig(trials=1, space={**rest, path: {"int": [1, 3]}}, pruner="none").pruner_caveat is None
        asked = TuneConfig(trials=1, space={**rest, path: {"int": [1, 3]}}, pruner="hyperband")
        assert asked.pruner_name == "hyperband"
        assert asked.pruner_caveat == (
            f"tune.pruner: hyperband compares trials where their schedules end, but the space searches {path}: trials reach a "
            "rung after unlike amounts of training (a short train judged against a long one, before either has pruned), so short "
            "schedules are stopped for being short. Fix the schedule in the recipe and search the rest, or set pruner: none "
            "(the default for such a space).")
    plain = TuneConfig(trials=1, space=rest, pruner="median")
    assert plain.schedule_paths == [] and plain.pruner_name == "median" and plain.pruner_caveat is None
    assert TuneConfig(trials=1, space=rest).pruner_name == "hyperband", "a fixed schedule: Hyperband by default"
    both = TuneConfig(trials=1, space={"train.epochs": {"int": [1, 3]}, **rest, "prune.steps": {"int": [1, 3]}}, pruner="asha")
    assert both.schedule_paths == ["train.epochs", "prune.steps"] and "searches train.epochs, prune.steps: trials reach" in both.pruner_caveat
    assert TuneConfig(trials=1, space={"model.kwargs.epochs_like": {"int": [1, 3]}, "seed": {"int": [0, 3]}}).schedule_paths == []


def test_a_pareto_objective_cannot_be_pruned_and_queued_trials_must_lie_in_the_space():
    space = {"train.lr": {"float": [0.001, 0.1]}, "quantize.method": {"choice": ["static", "accuracy_aware"]}}
    with pytest.raises(ValueError, match="a Pareto objective cannot be pruned"):
        TuneConfig(trials=1, space=space, objective="pareto-size", pruner="hyperband")
    assert TuneConfig(trials=1, space=space, objective="pareto-size").pruner_name == "none"
    assert TuneConfig(trials=1, space=space).pruner_name == "hyperband" and TuneConfig(trials=1, space=space).sampler_name == "tpe"
    with pytest.raises(ValueError, match=r"first\[0\]: train.epochs not in the space"):
        TuneConfig(trials=1, space=space, first=[{"train.epochs": 3}])
    with pytest.raises(ValueError, match=r"first\[1\]: train.lr = 0.5 outside"):
        TuneConfig(trials=1, space=space, first=[{"train.lr": 0.1}, {"train.lr": 0.5}])
    with pytest.raises(ValueError, match="quantize.method = 'qat' outside"):
        TuneConfig(trials=1, space=space, first=[{"quantize.method": "qat"}])
    TuneConfig(trials=1, space=space, first=[{"train.lr": 0.001, "quantize.method": "static"}])


def test_durations_ranges_and_what_a_parameter_admits():
    assert [seconds(t) for t in ("90", "90s", "1.5m", "2 min", "2h")] == [90, 90, 90, 120, 7200]
    with pytest.raises(ValueError, match="write a number with s, m or h"):
        seconds("2d")
    assert Param(int=[1, 3]).admits(3) and Param(int=[1, 3]).admits(1) and not Param(int=[1, 3]).admits(4) and not Param(int=[1, 3]).admits(0)
    assert not Param(int=[1, 3]).admits(2.0) and not Param(int=[0, 3]).admits(True), "an int range takes ints only"
    assert Param(float=[0.1, 0.5]).admits(0.5) and Param(float=[0, 1]).admits(1) and not Param(float=[0.1, 0.5]).admits(0.05)
    assert Param(choice=[[8, 16], [16, 32]]).admits([16, 32]) and not Param(choice=[[8, 16]]).admits([8])
    assert Param(int=[2, 2]).values() == [2, 2] and Param(choice=["a", "b"]).values() == ["a", "b"]
    with pytest.raises(ValueError, match="low 0.5 is above high 0.1"):
        Param(float=[0.5, 0.1])
    with pytest.raises(ValueError, match="choice: give at least one value"):
        Param(choice=[])
    with pytest.raises(ValueError, match="log: true needs a numeric range above 0"):
        Param(choice=[1, 2], log=True)
    Param(float=[1e-6, 1e-2], log=True)


def test_a_path_that_gives_no_valid_recipe_is_named_with_its_nearest_paths():
    recipe = {"name": "x", "stages": [{"train": {"epochs": 2, "lr": 0.1}}, {"prune": {"target": {"keep_macs": 0.5}}}]}

    def parse(r):
        if r["stages"][0]["train"]["epochs"] > 3:
            raise UserError("train.epochs: at most 3 here")
        if "keep_mac" in r["stages"][1]["prune"]["target"]:
            raise UserError("prune.target.keep_mac: no such field")

    with pytest.raises(UserError, match=r"tune.space.train.epochs = 4 does not give a valid recipe \(the recipe's closest paths: train.epochs"):
        check_space(recipe, TuneConfig(trials=1, space={"train.epochs": {"int": [1, 4]}}), parse)
    with pytest.raises(UserError, match="closest paths: prune.target.keep_macs"):
        check_space(recipe, TuneConfig(trials=1, space={"prune.target.keep_mac": {"float": [0.1, 0.2]}}), parse)
    both = {"train.epochs": {"int": [1, 3]}, "train.lr": {"choice": [0.1, 0.5]}}

    def only_apart(r):  # each value alone is fine; 3 epochs at lr 0.5 together are not
        if r["stages"][0]["train"]["epochs"] == 3 and r["stages"][0]["train"]["lr"] == 0.5:
            raise UserError("no")

    with pytest.raises(UserError, match=r"tune.first\[1\] does not give a valid recipe"):
        check_space(recipe, TuneConfig(trials=1, space=both, first=[{"train.epochs": 1}, {"train.epochs": 3, "train.lr": 0.5}]), only_apart)
    check_space(recipe, TuneConfig(trials=1, space=both, first=[{"train.epochs": 3, "train.lr": 0.1}]), only_apart)
    check_space(recipe, TuneConfig(trials=1, space={"train.epochs": {"int": [1, 3]}}), parse)


def trial(number: int, **devices) -> dict:
    """A finished trial as the picks read it: per device (val, broken budgets, p50 ms, KiB)."""
    return {"trial": number, "devices": {name: {"val_accuracy": v, "broken": list(b), "latency_p50_ms": ms, "size_kib": kib}
                                         for name, (v, b, ms, kib) in devices.items()}}


def test_each_device_gets_its_most_accurate_trial_within_budget_else_the_closest():
    rows = [
        trial(0, pi=(0.90, ["max_latency_p90_ms"], 9.0, 40), n100=(0.90, [], 1.0, 40)),
        trial(1, pi=(0.85, [], 4.0, 30), n100=(0.85, [], 0.5, 30)),
        trial(2, pi=(0.87, [], 4.5, 35), n100=(0.87, [], 0.6, 35)),
        trial(3, pi=(0.87, [], 4.4, 35), n100=(0.87, [], 0.6, 35)),
        trial(4, pi=(0.95, ["min_accuracy", "max_size_kb"], 2.0, 90), n100=(0.95, ["max_size_kb"], 0.2, 90)),
    ]
    assert pick(rows, "pi")["trial"] == 2, "within budget first, then the metric, then the earlier of a tie"
    assert pick(rows, "n100")["trial"] == 0
    assert [feasible(r) for r in rows] == [False, True, True, True, False]
    closest = [trial(0, pi=(0.99, ["a", "b"], 1, 1)), trial(1, pi=(0.50, ["a"], 1, 1)), trial(2, pi=(0.60, ["b"], 1, 1))]
    assert pick(closest, "pi")["trial"] == 2, "none within budget: fewest broken budgets, then the metric"
    assert rank(closest[1], "pi") < rank(closest[2], "pi") < rank(rows[1], "pi")
    assert pick([trial(0, pi=(None, [], 1, 1)), trial(1, pi=(0.1, [], 1, 1))], "pi")["trial"] == 1, "no figure ranks as 0"
    assert pick([trial(0, pi=(0.1, [], 1, 1))], "n100") is None and pick(rows + [trial(5, pi=(0.99, [], 1, 1))], "n100")["trial"] == 0


def test_the_pareto_front_holds_exactly_the_trials_no_other_beats_on_both():
    rows = [
        trial(0, pi=(0.90, [], 9.0, 40)), trial(1, pi=(0.85, [], 4.0, 30)), trial(2, pi=(0.85, [], 5.0, 20)),
        trial(3, pi=(0.80, [], 4.0, 50)), trial(4, pi=(0.95, ["min_accuracy"], 12.0, 60)), trial(5, pi=(0.90, [], 9.0, 45)),
        trial(6, n100=(0.99, [], 0.1, 1)),
    ]
    assert [r["trial"] for r in pareto_front(rows, "pi", "latency_p50_ms")] == [1, 0, 5, 4], "ties on both figures both stay"
    assert [r["trial"] for r in pareto_front(rows, "pi", "size_kib")] == [2, 0, 4]
    assert pareto_front(rows, "absent", "size_kib") == []


def test_a_path_into_the_stages_names_what_is_wrong_and_the_stages_there_are():
    recipe = {"name": "x", "stages": [{"train": {"epochs": 2}}, "export", {"validate": {}}]}
    stages = "its stages: train, export, validate"
    for path, message in [
        ("stages", "tune.space: stages: write stages.POSITION.NAME.FIELD, e.g. stages.1.prune.target.keep_macs"),
        ("stages.1.export", "tune.space: stages.1.export: write stages.POSITION.NAME.FIELD"),
        ("stages.3.train.epochs", f"tune.space: stages.3.train.epochs: the recipe has no stage 'train' at position 3; {stages}"),
        ("stages.9.train.epochs", "the recipe has no stage 'train' at position 9"),
        ("stages.x.train.epochs", "the recipe has no stage 'train' at position x"),
        ("stages.1.train.epochs", f"tune.space: stages.1.train.epochs: the recipe has no stage 'train' at position 1; {stages}"),
        ("prune.steps", f"tune.space: prune.steps: the recipe has no stage 'prune' (nor a header field of that name); {stages}"),
    ]:
        with pytest.raises(UserError) as refused:
            with_values(recipe, {path: 1})
        assert message in str(refused.value), path
    assert with_values(recipe, {"export.opset": 18, "stages.2.validate.runs": 30})["stages"] == [
        {"train": {"epochs": 2}}, {"export": {"opset": 18}}, {"validate": {"runs": 30}}], "a stage written as a bare name gets its config"
    assert with_values({"stages": [{"train": None}]}, {"train.lr": 0.1}) == {"stages": [{"train": {"lr": 0.1}}]}


def test_the_recipes_paths_and_the_nearest_ones_an_error_offers():
    from pipeline.tune.spec import leaf_paths

    recipe = {"name": "x", "model": {"name": "tiny_cnn", "kwargs": {"widths": [8]}}, "stages": [{"train": {"epochs": 2, "lr": 0.1}}, "export", {"prune": {"target": {"keep_macs": 0.5}}}]}
    assert leaf_paths(recipe) == ["name", "model.name", "model.kwargs.widths", "train.epochs", "train.lr", "prune.target.keep_macs"]

    def refuse(r):
        raise UserError("refused")

    def refusal(recipe, path):
        with pytest.raises(UserError) as refused:
            check_space(recipe, TuneConfig(trials=1, space={path: {"int": [1, 1]}}), refuse)
        return str(refused.value)

    assert refusal(recipe, "keep_macs").startswith("tune.space.keep_macs = 1 does not give a valid recipe (the recipe's closest paths: prune.target.keep_macs):\n")
    assert refusal(recipe, "accelerator.qqq") == "tune.space.accelerator.qqq = 1 does not give a valid recipe:\nrefused", "no hint when nothing is near"
    many = {"stages": [{"train": {"a": 1, "b": 1, "c": 1, "d": 1}}]}
    assert refusal(many, "train.x").startswith("tune.space.train.x = 1 does not give a valid recipe (the recipe's closest paths: train.d, train.c, train.b):")


def test_a_spec_is_a_recipe_with_a_tune_section():
    from pipeline.core.errors import RecipeError
    from pipeline.tune.spec import split_spec

    recipe, tune = split_spec({"name": "x", "stages": [], "tune": {"trials": 2, "space": {"train.lr": {"float": [0.1, 0.2]}}}}, "spec.yaml")
    assert recipe == {"name": "x", "stages": []} and tune.trials == 2 and tune.space["train.lr"].float == (0.1, 0.2)
    for raw in (["a list"], {"name": "x"}, {"name": "x", "tune": "fast"}):
        with pytest.raises(RecipeError, match=r"^spec.yaml: a tune spec is a recipe with a `tune:` section \(space, trials or time\)$"):
            split_spec(raw, "spec.yaml")
    with pytest.raises(RecipeError) as refused:
        split_spec({"tune": {"trials": 0, "trails": 2, "space": {"train.lr": {"float": [0.1, 0.2]}}}}, "spec.yaml")
    assert str(refused.value).splitlines() == [
        "spec.yaml: invalid tune section:", "  - tune.trials: Input should be greater than or equal to 1 (got 0)",
        "  - tune.trails: unknown field; allowed: space, trials, time, seed, objective, sampler, startup_trials, pruner, min_epochs, reduction_factor, limits, first"]


def test_an_unknown_value_counts_as_zero_on_the_pareto_front():
    rows = [trial(0, pi=(None, [], 3.0, 1)), trial(1, pi=(0.5, [], 4.0, 1)), trial(2, pi=(None, [], 5.0, 1))]
    assert [r["trial"] for r in pareto_front(rows, "pi", "latency_p50_ms")] == [0, 1]


def test_a_model_limit_is_broken_above_it_and_when_the_figure_is_missing():
    from pipeline.tune.picks import broken_limits

    limits = {"max_params": 14862, "max_macs": 8e6}
    assert broken_limits(limits, {"params": 14862, "macs": 8e6}) == []
    assert broken_limits(limits, {"params": 14863, "macs": 8e6 + 1}) == ["max_params", "max_macs"]
    assert broken_limits(limits, {"params": 100}) == ["max_macs"], "not recorded: not passed"
    assert broken_limits({"max_params": None, "max_macs": 1.0}, {"params": 10**9, "macs": 0.5}) == []


def test_tpe_starts_from_ten_random_trials_unless_told_at_least_one():
    space = {"train.lr": {"float": [0.001, 0.1]}}
    assert TuneConfig.model_validate({"space": space, "trials": 8}).startup_trials == 10
    assert TuneConfig.model_validate({"space": space, "trials": 8, "startup_trials": 1}).startup_trials == 1
    with pytest.raises(ValueError, match="startup_trials"):
        TuneConfig.model_validate({"space": space, "trials": 8, "startup_trials": 0})


@pytest.mark.parametrize("text, expected", [("14862", 14862), ("8e6", 8_000_000), ("8M", 8_000_000), ("15k", 15_000), ("1.5G", 1_500_000_000), ("1", 1)])
def test_counts_as_users_write_them(text, expected):
    from pipeline.tune.model_budget import count

    assert count(text, "--max-macs") == expected


@pytest.mark.parametrize("text", ["8X", "0", "0.5", "-3M", "nan", "inf", "", "M"])
def test_a_count_that_is_not_one_is_refused_naming_the_option(text):
    from pipeline.tune.model_budget import count

    with pytest.raises(UserError, match=f"--max-params {text!r}: give a count of at least 1, as 14862, 8e6, 8M or 15k"):
        count(text, "--max-params")


def test_a_model_budget_prunes_straight_to_it_and_limits_every_trial():
    from pipeline.tune.default_space import SPACE, default_spec

    plain = default_spec("tiny_cnn", {"source": "embedded"}, ["host"], 2, None)
    assert plain["tune"]["space"] == SPACE and "limits" not in plain["tune"]
    assert plain["stages"][1]["prune"]["target"] == {"keep_macs": 0.6}
    both = default_spec("tiny_cnn", {"source": "embedded"}, ["host"], 2, None, max_macs=8_000_000, max_params=15_000)
    assert both["stages"][1]["prune"]["target"] == {"max_macs": 8_000_000}, "MACs first when both are given"
    assert both["tune"]["limits"] == {"max_macs": 8_000_000, "max_params": 15_000}
    assert set(both["tune"]["space"]) == set(SPACE) - {"prune.target.keep_macs"} and "prune.target.keep_macs" in SPACE
    params = default_spec("tiny_cnn", {"source": "embedded"}, ["host"], 2, None, max_params=15_000)
    assert params["stages"][1]["prune"]["target"] == {"max_params": 15_000} and params["tune"]["limits"] == {"max_params": 15_000}
    assert default_spec("m:build", {"source": "embedded"}, ["host"], 2, None, max_macs=5)["tune"]["limits"] == {"max_macs": 5}
