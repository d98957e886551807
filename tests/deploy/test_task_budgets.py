"""Budgets belong to a task: a classifier is judged by min_accuracy / max_accuracy_drop, a detector by
min_map / max_map_drop, both reading the recipe's metric; one profile may hold both."""

from __future__ import annotations

import pytest

from devices.on_device import verdicts
from pipeline.deploy.budgets import judge
from pipeline.deploy.profiles import Budgets

BOTH = Budgets(max_size_kb=100, min_accuracy=0.8, max_accuracy_drop=2.0, min_map=0.4, max_map_drop=1.0)


def test_each_task_reads_its_own_budgets_and_the_shared_ones():
    assert BOTH.for_task("classification") == {"max_size_kb": 100, "min_accuracy": 0.8, "max_accuracy_drop": 2.0}
    assert BOTH.for_task("detection") == {"max_size_kb": 100, "min_map": 0.4, "max_map_drop": 1.0}


@pytest.mark.parametrize("value, passed", [(0.4, True), (0.41, True), (0.39, False)])
def test_min_map_is_a_floor_on_the_metric(value, passed):
    rows = judge(BOTH, {"size_kb": 50, "accuracy": value, "accuracy_drop": 0.5}, "detection")
    assert rows["min_map"] == {"value": value, "limit": 0.4, "passed": passed}
    assert set(rows) == {"max_size_kb", "min_map", "max_map_drop"}


@pytest.mark.parametrize("drop, passed", [(1.0, True), (0.5, True), (1.01, False)])
def test_max_map_drop_is_a_ceiling_on_the_points_lost(drop, passed):
    rows = judge(BOTH, {"size_kb": 50, "accuracy": 0.5, "accuracy_drop": drop}, "detection")
    assert rows["max_map_drop"]["passed"] is passed and rows["max_map_drop"]["value"] == drop


def test_a_classifier_is_not_judged_by_a_detectors_budget_and_the_default_task_is_classification():
    rows = judge(BOTH, {"size_kb": 50, "accuracy": 0.1, "accuracy_drop": 50.0})
    assert set(rows) == {"max_size_kb", "min_accuracy", "max_accuracy_drop"}
    assert rows["min_accuracy"]["passed"] is False
    assert verdicts.RULES["min_map"] == ("accuracy", False) and verdicts.RULES["max_map_drop"] == ("accuracy_drop", True)


def test_a_detector_without_its_figure_cannot_be_judged():
    rows = judge(Budgets(min_map=0.3), {"accuracy": None}, "detection")
    assert rows["min_map"]["passed"] is None and verdicts.overall(rows) is None
