"""`compress tune-clean TUNE_DIR`: give back the disk a study's stage store and its unpicked trials take.

Trials hard-link their reused stages from the store, so removing the store alone frees little: the
bytes go when the last trial folder linking them goes too. What is kept: the study's database (a
later `compress tune` resumes it, recomputing a shared stage once when it needs it again), its
summary and reports, each tuned recipe, and the run folder of every trial some device was given
(so `compress report`, `bundle` and `gate` still work on it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.core.errors import UserError


def disk_bytes(path: Path) -> int:
    """Bytes the files under `path` hold, each hard-linked file counted once."""
    seen, total = set(), 0
    for f in path.rglob("*") if path.is_dir() else []:
        if f.is_file() and not f.is_symlink():
            stat = f.stat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def clean(tune_dir: Path) -> dict:
    """Remove the stage store and the trial folders no device was given; returns what went and what it freed."""
    summary_file = tune_dir / "tune.json"
    if not summary_file.is_file():
        raise UserError(f"{tune_dir}: no tune.json here, so this is not a finished tune folder; give the folder `compress tune` wrote "
                        "(runs/<name>-tune by default), or run the tune to its end first")
    picked = {pick["trial"] for pick in json.loads(summary_file.read_text())["devices"].values()}
    before = disk_bytes(tune_dir)
    removed = []
    for trial in sorted((tune_dir / "trials").glob("trial-*")):
        if int(trial.name.split("-")[1]) not in picked:
            shutil.rmtree(trial)
            removed.append(trial.name)
    store = tune_dir / "stage-store"
    if store.exists():
        shutil.rmtree(store)
        removed.append(store.name)
    return {"removed": removed, "kept_trials": sorted(picked), "freed_bytes": before - disk_bytes(tune_dir)}
