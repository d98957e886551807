import pytest

from pipeline.deploy.budgets import judge, overall
from pipeline.deploy.profiles import Budgets


def test_budgets_pass_fail_and_unknown():
    rows = judge(
        Budgets(max_size_kb=100, min_accuracy=0.9, max_accuracy_drop=1.0),
        {"size_kb": 50.0, "accuracy": 0.85, "accuracy_drop": None},
    )
    assert rows["max_size_kb"] == {"value": 50.0, "limit": 100, "passed": True}
    assert rows["min_accuracy"]["passed"] is False
    assert rows["max_accuracy_drop"] == {"value": None, "limit": 1.0, "passed": None}
    assert "max_latency_p90_ms" not in rows, "a budget left out is not checked"
    assert overall(rows) is False


def test_overall_fails_closed():
    assert overall({}) is None
    assert overall({"a": {"passed": True}, "b": {"passed": None}}) is None
    assert overall({"a": {"passed": True}}) is True


FIGURES = {"size_kb": 100.0, "size_gzip_kb": 50.0, "latency_p90_ms": 2.0, "accuracy": 0.9, "accuracy_drop": 1.0, "peak_memory_mb": 64.0}
AT_LIMIT = Budgets(max_size_kb=100, max_size_gzip_kb=50, max_latency_p90_ms=2.0, min_accuracy=0.9, max_accuracy_drop=1.0, max_peak_memory_mb=64)


def test_a_figure_exactly_at_its_limit_meets_the_budget():
    rows = judge(AT_LIMIT, FIGURES)
    assert len(rows) == 6 and all(row["passed"] is True for row in rows.values())
    assert overall(rows) is True


@pytest.mark.parametrize("figure, budget", [
    ("size_kb", "max_size_kb"), ("size_gzip_kb", "max_size_gzip_kb"), ("latency_p90_ms", "max_latency_p90_ms"),
    ("accuracy", "min_accuracy"), ("accuracy_drop", "max_accuracy_drop"), ("peak_memory_mb", "max_peak_memory_mb"),
])
def test_a_hair_past_the_limit_breaks_that_budget_alone(figure, budget):
    worse = FIGURES[figure] * (0.999999 if budget.startswith("min_") else 1.000001)
    rows = judge(AT_LIMIT, {**FIGURES, figure: worse})
    assert rows[budget]["passed"] is False and [b for b, row in rows.items() if row["passed"] is False] == [budget]
    assert overall(rows) is False


def test_a_budget_without_a_limit_is_passed_over_and_the_next_one_judged():
    from devices.on_device.verdicts import judge as judge_plain

    rows = judge_plain({"max_size_kb": None, "min_accuracy": 0.5}, {"size_kb": 1.0, "accuracy": 0.123456789})
    assert rows == {"min_accuracy": {"value": 0.123457, "limit": 0.5, "passed": False}}, "values are kept to a millionth"
