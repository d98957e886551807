"""A run killed with SIGKILL at any point resumes to the same result as a run never killed."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe
from tests.conftest import finished_run_recipe

ROOT = Path(__file__).resolve().parents[1]


def recipe() -> dict:
    """train, export, quantize (validate's timings would differ between any two runs)."""
    r = finished_run_recipe()
    r["stages"], r["devices"] = r["stages"][:3], ["host"]
    return r


def figures(report: dict) -> dict:
    """Everything but timings: each stage's figures and the deployable files' hashes."""
    return {
        "stages": [(s["name"], s["status"] != "failed", s["metrics"]) for s in report["stages"]],
        "artifacts": report["artifacts"],
        "artifact_sha256": report["artifact_sha256"],
        "reference": report["reference"],
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    return run_recipe(parse_recipe(recipe()), tmp_path_factory.mktemp("whole"), quiet=True)


@pytest.mark.parametrize("point, finished_before", [("mid-training", 0), ("mid-export", 1), ("mid-quantize", 2), ("before-commit", 2)])
def test_a_killed_run_resumes_to_the_same_result(point, finished_before, uninterrupted, tmp_path):
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe()))
    out = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-m", "tests.crash_driver", str(recipe_file), str(out), point], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    committed = sorted(p.parent.name for p in out.glob("*/state.json"))
    assert len(committed) == finished_before, committed

    resumed = run_recipe(parse_recipe(recipe()), out, quiet=True)
    statuses = [s["status"] for s in resumed["stages"]]
    assert statuses == ["resumed"] * finished_before + ["ran"] * (3 - finished_before)
    assert figures(resumed) == figures(uninterrupted)
