"""Run a recipe in this process and SIGKILL it at one named point (for test_crash_safety.py).

    python -m tests.crash_driver RECIPE.json OUT_DIR POINT

A kill by the kernel gives the process no chance to clean up, exactly like the OOM killer or a
pulled plug; the test then resumes the run and compares it with an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_call(module, name: str, call: int = 1) -> None:
    """Replace `module.name` so its `call`-th call kills the process instead of returning."""
    original, calls = getattr(module, name), [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            kill()
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


def arm(point: str) -> None:
    import pipeline.core.run_folder as run_folder
    import pipeline.stages.base as base
    import pipeline.stages.quantize as quantize
    import pipeline.training.loop as loop

    if point == "mid-training":  # end of the first epoch of the first training stage
        kill_on_call(loop, "accuracy")
    elif point == "mid-export":  # model.onnx written, not yet measured
        kill_on_call(base, "file_accuracy")  # the first file a run scores is export's
    elif point == "mid-quantize":  # model.int8.onnx written, not yet checked
        kill_on_call(quantize, "optimized_nodes")
    elif point == "before-commit":  # the quantize stage's files and metrics.json written, its state.json not
        original = run_folder.write_json_atomic

        def write(path: Path, data: dict) -> None:
            if path.name == "state.json" and path.parent.name.endswith("-quantize"):
                kill()
            original(path, data)

        run_folder.write_json_atomic = write
    else:
        raise SystemExit(f"unknown kill point {point}")


if __name__ == "__main__":
    recipe_path, out, point = sys.argv[1:4]
    from pipeline.recipe import parse_recipe
    from pipeline.runner import run_recipe

    arm(point)
    run_recipe(parse_recipe(json.loads(Path(recipe_path).read_text())), out, quiet=True)
    raise SystemExit("the kill point was never reached")
