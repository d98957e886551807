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
