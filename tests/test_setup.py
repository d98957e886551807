"""The README's two commands install into the active environment, else into the project's .venv:
a distribution's python3 refuses pip installs outside one (PEP 668), so it is never the target."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def planned(env: dict) -> str:
    """What `make test` would run, without running it (`make -n`, with .venv assumed missing)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON")}
    done = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_without_an_active_environment_make_uses_its_own_venv():
    plan = planned({})
    assert "python3 -m venv .venv" in plan and "apt install python3-venv" in plan
    assert ".venv/bin/python -m pip install" in plan and ".venv/bin/python -m pytest -q" in plan
    assert "\npython3 -m pip" not in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("variable", ["VIRTUAL_ENV", "CONDA_PREFIX"])
def test_inside_an_active_environment_make_installs_there(variable):
    plan = planned({variable: "/some/env"})
    assert "python -m pip install" in plan and ".venv" not in plan


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci/run").read_text() and "make test" in (ROOT / "README.md").read_text()
