"""A full disk, said as one paragraph: which folder, how much is free, how much the stage had written.

A stage that runs out of space fails wherever it happened to write: Python raises `OSError`
(ENOSPC), but torch's checkpoint writer reports the same thing as a `RuntimeError` ("unexpected
pos …"), and onnx or a runtime as something else again. So a failure counts as a full disk when
any error in its chain says ENOSPC, or when the disk holding the run has less than `FULL_BELOW`
left once the stage has failed.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from pipeline.core.errors import UserError

FULL_BELOW = 1 << 20  # bytes free under which any failure while writing is taken for a full disk
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


class DiskFull(UserError):
    """The disk holding the run filled up; finished stages are kept and resume once space is freed."""


def _chain(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def size_of(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def human(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def out_of_space(error: BaseException, folder: Path) -> bool:
    """Whether `error`, raised while writing under `folder`, came from a full disk."""
    if any(isinstance(e, OSError) and e.errno in NO_SPACE for e in _chain(error)):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


def disk_full(error: BaseException, run_dir: Path, stage_dir: Path, finished: list[Path]) -> DiskFull:
    """The paragraph for a stage that filled the disk. The stage's partial folder is removed first,
    so the report can still be written and nothing half-written looks finished."""
    written = size_of(stage_dir)
    shutil.rmtree(stage_dir, ignore_errors=True)
    free = shutil.disk_usage(run_dir).free
    biggest = max((size_of(p) for p in finished), default=0)
    needed = max(written, biggest) * 2
    kept = f"the finished stages ({', '.join(p.name for p in finished)}) are kept and resume" if finished else "no stage had finished"
    return DiskFull(
        f"the disk holding the run folder {run_dir} is full ({human(free)} free) while stage {stage_dir.name} was writing "
        f"({type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else 'no message'}). The stage had written "
        f"{human(written)} and the largest finished stage holds {human(biggest)}: free at least {human(needed)} there (or choose "
        f"another --out), then run the same command again; {kept}."
    )
