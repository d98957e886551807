"""The benchmarks' one way to run the pipeline and read a run (`benchmarks/runs.py`), and every
benchmark script importing: they are not run in CI (they take minutes to hours), so a change that
breaks one shows here, not on the next person's machine."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import runs  # noqa: E402  (benchmarks/runs.py, as the scripts import it)


def test_every_benchmark_script_imports():
    scripts = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
    code = f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); " + "; ".join(f"import {s}" for s in scripts)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_run_is_read_by_stage_name_not_by_folder(finished_run):
    done = runs.finished(finished_run)
    assert done.metrics("quantize")["method"] == "static"
    assert done.file("export", "model.onnx") == finished_run / "02-export" / "model.onnx"
    assert done.stage_seconds() == pytest.approx(sum(s["seconds"] for s in done.report()["stages"]))
    assert done.stage_seconds("train") == done.report()["stages"][0]["seconds"]
    with pytest.raises(UserError, match="the run has no prune stage \\(its stages: train, export, quantize, validate\\)"):
        done.metrics("prune")


def test_a_folder_without_a_report_is_no_finished_run(tmp_path):
    assert runs.finished(tmp_path) is None


def test_a_failing_run_raises_with_its_error_output(tmp_path, tiny_recipe):
    tiny_recipe["stages"] = [{"quantize": {}}]  # nothing exported before it
    with pytest.raises(runs.RunFailed, match="(?s)tiny failed \\(exit 1\\).*put export before it"):
        runs.run(tiny_recipe, tmp_path / "run")
    assert (tmp_path / "run.yaml").is_file(), "the recipe is kept beside the run folder"
    assert not RunFolder(tmp_path / "run").report_file.exists()
