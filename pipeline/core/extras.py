"""The optional parts of the install (pip extras of pyproject.toml): whether one is installed here,
and a recipe-check problem that names it, so `compress recipe check --install` (and `make run`)
can install exactly what a recipe asks for and nothing else.

The quickstart needs none of them: the light install is torch, onnx, onnxruntime and torch-pruning.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from devices.on_device.runtimes import RUNNERS
from pipeline.core.errors import UserError

CORE_RUNTIME = "onnxruntime"  # a dependency of the project itself; every other runtime is an extra of its own name
MODULE_OF = {  # extra -> the module whose presence says it is installed
    "neural-compressor": "neural_compressor",
    "tune": "optuna",
    **{runtime: runner.package for runtime, runner in RUNNERS.items() if runtime != CORE_RUNTIME},
}


def installed(extra: str) -> bool:
    return importlib.util.find_spec(MODULE_OF[extra]) is not None


def pip_command(extras: list[str]) -> str:
    return f"pip install -e '.[{','.join(extras)}]'"


class MissingExtra(str):
    """A recipe-check problem caused by an extra that is not installed; it remembers which one."""

    extra: str

    def __new__(cls, extra: str, text: str) -> "MissingExtra":
        problem = super().__new__(cls, text)
        problem.extra = extra
        return problem


def missing(extra: str, what: str) -> list[MissingExtra]:
    """[] when installed; else the problem: `what` is asked for, and the command that installs it."""
    if installed(extra):
        return []
    return [MissingExtra(extra, f"{what} is asked for but not installed: {pip_command([extra])} (or: compress recipe check RECIPE --install)")]


def install(extras: list[str], project: Path) -> None:
    """pip-install the project's `extras` into this Python (its output shown: it is the progress)."""
    if not (project / "pyproject.toml").is_file():
        raise UserError(f"edge-compress is not installed from a checkout here, so its extras cannot be added from one: pip install 'edge-compress[{','.join(extras)}]'")
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-e", f"{project}[{','.join(extras)}]"]
    print(f"installing {', '.join(extras)}: {' '.join(command[2:])}", file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
