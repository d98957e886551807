"""A run's log: every line into run.log in its folder; the libraries' warnings there and not on the screen."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_library_warnings_go_to_the_run_log_not_the_terminal(tmp_path, tiny_recipe):
    tiny_recipe["stages"] = [{"train": {"epochs": 1, "lr": 0.01}}]
    tiny_recipe["metric"] = "tests.core.user_metrics:noisy_top1"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    done = subprocess.run([sys.executable, "-W", "always", "-m", "pipeline", "run", str(recipe), "--out", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "LIBRARY-NOISE" not in done.stderr and "PYTHON-WARNING" not in done.stderr
    assert "train epoch 1/1" in done.stderr, "the pipeline's own lines still reach the terminal"
    log = (tmp_path / "run" / "run.log").read_text()
    assert "WARNING torch.some_module: LIBRARY-NOISE" in log and "PYTHON-WARNING: something is deprecated" in log
    assert "INFO compress: train epoch 1/1" in log
    quiet = subprocess.run([sys.executable, "-m", "pipeline", "run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "resuming" not in quiet.stderr, "--quiet: warnings only on the terminal"
    assert "resuming after 01-train" in (tmp_path / "run" / "run.log").read_text(), "a resumed run appends to its log, every line"
