"""One rank of a multi-process run, watched (for test_distributed.py).

    python -m tests.distributed_driver RECIPE OUT_DIR RECORD_DIR [KILL_STAGE]

`{rank}` in OUT_DIR gives each rank its own folder: machines that do not share a filesystem.

Runs the recipe like `compress run` does under torchrun, and writes `RECORD_DIR/rank<N>.json`:
for each stage this rank ran, the structure and a checksum of the weights it ended with (before
anything is reloaded from rank 0's files), the channels each pruning step removed on this rank, and
every file write of the run folder this rank made. With KILL_STAGE, rank 1 SIGKILLs itself when
that stage's training begins, as the OOM killer would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
from pathlib import Path


def checksum(model) -> dict:
    tensors = model.state_dict()
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return {"shapes": {k: list(v.shape) for k, v in tensors.items()}, "sha256": digest.hexdigest()}


def main(recipe_path: str, out_dir: str, record_dir: str, kill_stage: str | None = None) -> None:
    import pipeline.core.run_folder as run_folder
    import pipeline.runner as runner
    import pipeline.stages.prune as prune
    import pipeline.training.session as session
    from pipeline.recipe import load_recipe
    from pipeline.runner import run_recipe
    from pipeline.stages import STAGES

    rank = int(os.environ["RANK"])
    record = {"rank": rank, "stages": [], "removed": [], "writes": []}

    for name in STAGES.names():
        stage = STAGES.get(name)

        def watched(cfg, state, ctx, _run=stage.run, _name=name):
            if kill_stage == _name and rank == 1:
                def fit_then_die(*args, **kwargs):
                    os.kill(os.getpid(), signal.SIGKILL)

                session.fit = fit_then_die
            state = _run(cfg, state, ctx)
            record["stages"].append({"name": _name, "model": checksum(state.model), "heads": checksum(state.heads) if state.heads else None})
            return state

        STAGES._items[name] = dataclasses.replace(stage, run=watched)

    original_prune_once = prune.prune_once

    def recorded_prune_once(*args, **kwargs):
        removed = original_prune_once(*args, **kwargs)
        record["removed"].append(removed)
        return removed

    prune.prune_once = recorded_prune_once

    original_write = run_folder.write_json_atomic

    def recorded_write(path: Path, data) -> None:
        record["writes"].append(str(path))
        original_write(path, data)

    run_folder.write_json_atomic = recorded_write

    original_save = runner.save_model

    def recorded_save(model, path: Path) -> None:
        record["writes"].append(str(path))
        original_save(model, path)

    runner.save_model = recorded_save
    try:
        run_recipe(load_recipe(recipe_path), out_dir.format(rank=rank), quiet=True)
    finally:
        Path(record_dir, f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:])
