"""The accuracy-aware search on a scripted model: which calibration and fallbacks it keeps, and
whether it says the budget was met, at the budget's edge and beyond it."""

from pathlib import Path

import pytest

from pipeline.quantization.accuracy_aware import search

REFERENCE = 0.90


def scripted(table: dict[tuple[str, frozenset], float]):
    """build/score over a table: (calibration, FP32 nodes) -> validation accuracy; unlisted sets score as the calibration alone."""

    def build(calibration, excluded):
        return Path(f"{calibration}:{','.join(excluded)}")

    def score(path):
        calibration, _, nodes = str(path).partition(":")
        key = (calibration, frozenset(n for n in nodes.split(",") if n))
        return table.get(key, table[(calibration, frozenset())])

    return build, score


TABLE = {
    ("minmax", frozenset()): 0.880,
    ("entropy", frozenset()): 0.885,  # drop 1.5 points, the best fully INT8 file
    ("entropy", frozenset({"conv1"})): 0.895,  # conv1 alone regains 1.0
    ("entropy", frozenset({"conv2"})): 0.887,
    ("entropy", frozenset({"conv3"})): 0.885,
}


def run(budget, table=TABLE, max_fp32_nodes=None):
    build, score = scripted(table)
    return search(build, score, ["minmax", "entropy"], ["conv1", "conv2", "conv3"], REFERENCE, budget, max_fp32_nodes)


def test_a_drop_exactly_at_the_budget_meets_it_with_no_fallback():
    result = run(1.5)  # 0.90 - 0.885 is 1.5000000000000013 points in floating point
    assert result.budget_met is True and result.best.calibration == "entropy" and result.best.excluded == ()
    assert len(result.trials) == 2, "nothing searched beyond the fully INT8 files"


def test_the_most_sensitive_node_goes_fp32_first_and_meets_the_budget():
    result = run(1.0)
    assert result.budget_met is True and result.best.excluded == ("conv1",) and result.best.accuracy == 0.895
    assert [row["node"] for row in result.sensitivity] == ["conv1", "conv2", "conv3"]
    assert result.summary()["chosen"]["drop_points"] == pytest.approx(0.5)


def test_a_fallback_made_unnecessary_by_a_later_one_is_dropped():
    table = {**TABLE, ("entropy", frozenset({"conv3"})): 0.886}
    table[("entropy", frozenset({"conv1", "conv2"}))] = 0.896  # drop 0.4: misses 0.2
    table[("entropy", frozenset({"conv1", "conv2", "conv3"}))] = 0.899  # meets
    result = run(0.2, table)
    assert result.budget_met is True and result.best.excluded == ("conv1", "conv2", "conv3"), "no pair was found to suffice"
    table[("entropy", frozenset({"conv1", "conv3"}))] = 0.899  # conv2 turns out unnecessary once conv3 is FP32
    result = run(0.2, table)
    assert result.budget_met is True and result.best.excluded == ("conv1", "conv3")


def test_when_no_candidate_meets_the_budget_the_most_accurate_is_kept_and_the_result_says_so():
    result = run(0.0, max_fp32_nodes=1)
    assert result.budget_met is False
    assert result.best.accuracy == max(t.accuracy for t in result.trials) == 0.895
    assert result.summary()["budget_met"] is False


def test_the_summary_and_the_log_say_every_trial_and_why_each_node_stayed_fp32():
    lines = []
    build, score = scripted(TABLE)
    result = search(build, score, ["minmax", "entropy"], ["conv1", "conv2", "conv3"], REFERENCE, 1.0, log=lines.append)
    assert result.best.path == build("entropy", ("conv1",))
    assert result.summary() == {
        "budget_points": 1.0,
        "budget_met": True,
        "fp32_val_accuracy": 0.9,
        "chosen": {"calibration": "entropy", "fp32_nodes": ["conv1"], "val_accuracy": 0.895, "drop_points": 0.5},
        "fp32_nodes": [{
            "node": "conv1",
            "reason": "alone in FP32 it regained +1.00 points on validation (sensitivity rank 1 of 3); without it the budget was not met",
        }],
        "sensitivity": [
            {"node": "conv1", "gain_points": 1.0, "rank": 1},
            {"node": "conv2", "gain_points": 0.2, "rank": 2},
            {"node": "conv3", "gain_points": 0.0, "rank": 3},
        ],
        "trials": [
            {"calibration": "minmax", "fp32_nodes": [], "val_accuracy": 0.88, "drop_points": 2.0},
            {"calibration": "entropy", "fp32_nodes": [], "val_accuracy": 0.885, "drop_points": 1.5},
            {"calibration": "entropy", "fp32_nodes": ["conv1"], "val_accuracy": 0.895, "drop_points": 0.5},
            {"calibration": "entropy", "fp32_nodes": ["conv2"], "val_accuracy": 0.887, "drop_points": 1.3},
            {"calibration": "entropy", "fp32_nodes": ["conv3"], "val_accuracy": 0.885, "drop_points": 1.5},
        ],
    }
    assert lines[0] == "accuracy_aware: minmax, 0 FP32 node(s): val acc 0.8800 (drop 2.00 points, budget 1.0)"
    assert lines[2] == "accuracy_aware: entropy, 1 FP32 node(s): val acc 0.8950 (drop 0.50 points, budget 1.0)"
    assert len(lines) == 5, "the first fallback was already measured in the sensitivity pass: not built twice"


def test_a_node_excluded_without_a_sensitivity_row_says_so():
    from pipeline.quantization.accuracy_aware import SearchResult, Trial

    result = SearchResult(Trial("minmax", ("conv9",), 0.9, Path("x")), True, 0.9, 1.0)
    assert result.fp32_nodes() == [{"node": "conv9", "reason": "excluded by the search"}]


def test_at_most_max_fp32_nodes_are_left_in_fp32():
    table = {**TABLE, ("entropy", frozenset({"conv1", "conv2"})): 0.899}
    assert run(0.2, table, max_fp32_nodes=1).budget_met is False
    met = run(0.2, table, max_fp32_nodes=2)
    assert met.budget_met is True and met.best.excluded == ("conv1", "conv2")


def test_figures_keep_their_precision_in_the_summary():
    table = {("minmax", frozenset()): 0.8876543, ("minmax", frozenset({"conv1"})): 0.8912345}
    build, score = scripted(table)
    result = search(build, score, ["minmax"], ["conv1"], 0.9012345, 0.5)
    summary = result.summary()
    assert summary["fp32_val_accuracy"] == 0.90123
    assert summary["trials"][0] == {"calibration": "minmax", "fp32_nodes": [], "val_accuracy": 0.88765, "drop_points": 1.3580}
    assert summary["sensitivity"] == [{"node": "conv1", "gain_points": 0.358, "rank": 1}]
    assert summary["budget_met"] is False and summary["sensitivity"], "a missed budget still says which nodes were tried"


def test_unneeded_fallbacks_are_tried_from_the_last_added_back_to_the_first():
    """All five nodes in FP32 meet the budget; a and e must stay, with one of b, c, d. Tried from
    the last added back (d, c, b, a), d and c go and b stays; another order keeps another set."""
    gains = {"a": 0.005, "b": 0.004, "c": 0.003, "d": 0.002, "e": 0.001}

    def accuracy(nodes: frozenset) -> float:
        if {"a", "e"} <= nodes and nodes & {"b", "c", "d"}:
            return 0.899
        return 0.880 + sum(gains[n] for n in nodes)

    class Table(dict):
        def get(self, key, default=None):
            return accuracy(key[1])

        def __getitem__(self, key):
            return accuracy(key[1])

    build, score = scripted(Table())
    result = search(build, score, ["minmax"], list(gains), 0.90, 0.2)
    assert [row["node"] for row in result.sensitivity] == ["a", "b", "c", "d", "e"]
    assert result.budget_met is True and result.best.excluded == ("a", "b", "e")
