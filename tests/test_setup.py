"""The README's two commands install into the active environment, else into the project's .venv:
a distribution's python3 refuses pip installs outside one (PEP 668), so it is never the target."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def planned(env: dict, target: str = "test", *flags: str) -> str:
    """What `make TARGET` would run, without running it (`make -n`; with -B, as on a fresh machine)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON")}
    done = subprocess.run(["make", "-n", *(flags or ("-B",)), target], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)
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


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
def test_the_quickstart_installs_the_light_set_and_the_tests_everything():
    quickstart, tests = planned({}, "quickstart"), planned({}, "test")
    assert "pip install --disable-pip-version-check --progress-bar on torch==2.13.0 -e .\n" in quickstart
    assert "runtimes" not in quickstart and "neural-compressor]" not in quickstart
    assert "torch==2.13.0 -e '.[test,neural-compressor,runtimes,tune]'" in tests
    assert tests.index("-e '.[test") < tests.index("bash tests/system_packages.sh") < tests.index("-m pytest -q"), \
        "the system parts (PostgreSQL, sshd, the emulated Arm board) after pip (their builder uses its pip), before the tests"


@needs_make
def test_pip_runs_only_when_the_project_changed_since_the_last_install(tmp_path):
    env = {"VIRTUAL_ENV": str(tmp_path)}
    assert "pip install" in planned(env, "quickstart", "--no-builtin-rules"), "nothing installed yet"
    (tmp_path / ".edge-compress-light").touch()
    assert "pip install" not in planned(env, "quickstart", "--no-builtin-rules")
    assert "pip install" in planned(env, "test", "--no-builtin-rules"), "the light set is not what the tests need"
    (tmp_path / ".edge-compress-all").touch()
    assert "pip install" not in planned(env, "test", "--no-builtin-rules")
    stamp = tmp_path / ".edge-compress-light"
    os.utime(stamp, (0, 0))  # older than pyproject.toml: the project changed since
    assert "pip install" in planned(env, "quickstart", "--no-builtin-rules")


@needs_make
def test_make_run_installs_what_the_recipe_asks_for_then_runs_it():
    plan = planned({}, "run", "-B", "RECIPE=recipes/runtimes.yaml")
    assert "-m pipeline recipe check recipes/runtimes.yaml --install\n" in plan
    assert plan.index("recipe check") < plan.index("-m pipeline run recipes/runtimes.yaml")
