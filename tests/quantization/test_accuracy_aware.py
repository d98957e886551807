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
