"""The arithmetic of MACs / params targets (fast, under mutation): which figure a target is on, each
round's goal, and the edge of a budget."""

import pytest

from pipeline.pruning.size_goals import round_goal, size_goal, within

FIGURES = {"macs": 32_000_000, "params": 270_000}


@pytest.mark.parametrize("kind, value, expected", [
    ("keep_macs", 0.25, ("macs", 32_000_000, 0.25)),
    ("max_macs", 8_000_000, ("macs", 32_000_000, 0.25)),
    ("keep_params", 0.5, ("params", 270_000, 0.5)),
    ("max_params", 27_000, ("params", 270_000, 0.1)),
    ("max_params", 540_000, ("params", 270_000, 2.0)),  # already within: nothing to remove
])
def test_a_target_is_a_fraction_of_its_own_figure(kind, value, expected):
    assert size_goal(kind, value, FIGURES) == pytest.approx(expected)


def test_round_goals_linear_and_geometric():
    assert [round_goal(0.5, k, 2, "linear") for k in (1, 2)] == pytest.approx([0.75, 0.5])
    assert [round_goal(0.36, k, 2, "geometric") for k in (1, 2)] == pytest.approx([0.6, 0.36])
    assert round_goal(0.4, 3, 3, "linear") == pytest.approx(0.4) and round_goal(0.4, 1, 1, "geometric") == pytest.approx(0.4)


def test_the_budget_edge():
    assert within(8_000_000, 0.25, 32_000_000), "exactly on the budget is within it"
    assert not within(8_000_001, 0.25, 32_000_000), "one MAC over is not"
    assert not within(8_000_000 * 1.0001, 0.25, 32_000_000)
    start = 31_480_000  # the last round's goal x start lands 1e-9 under the figure by float rounding alone
    assert round_goal(3_148_000 / start, 2, 2, "linear") * start < 3_148_000
    assert within(3_148_000, round_goal(3_148_000 / start, 2, 2, "linear"), start)
