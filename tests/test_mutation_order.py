"""The mutation order: fastest first, a file's tests kept together, nothing reordered outside mutation testing."""

from __future__ import annotations

from types import SimpleNamespace

from tests import mutation_order


def items(*nodeids: str) -> list:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def test_files_run_cheapest_first_and_tests_within_a_file_fastest_first():
    seconds = {"a.py::slow": 10.0, "a.py::quick": 0.1, "b.py::one": 1.0, "b.py::two": 0.5}
    ordered = mutation_order.fastest_first(items("a.py::slow", "b.py::one", "a.py::quick", "b.py::two"), seconds)
    assert [i.nodeid for i in ordered] == ["b.py::two", "b.py::one", "a.py::quick", "a.py::slow"]


def test_a_test_the_stats_never_timed_counts_as_instant():
    ordered = mutation_order.fastest_first(items("a.py::timed", "a.py::new"), {"a.py::timed": 2.0})
    assert [i.nodeid for i in ordered] == ["a.py::new", "a.py::timed"]


def test_nothing_is_reordered_outside_mutation_testing(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mutmut-stats.json").write_text('{"duration_by_test": {"a.py::x": 5.0}}')
    monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
    assert not mutation_order.under_mutation()
    monkeypatch.setenv("MUTANT_UNDER_TEST", "stats")  # mutmut's own runs, not a mutant
    assert not mutation_order.under_mutation()
    monkeypatch.setenv("MUTANT_UNDER_TEST", "pipeline.recipe.x_parse_recipe__mutmut_3")
    assert mutation_order.under_mutation()
    (tmp_path / "mutmut-stats.json").unlink()
    assert not mutation_order.under_mutation()
