"""Output paths checked before any work starts: a folder or file that cannot be written is one
paragraph at the start (naming the path, the system's reason and the option to change), never a
traceback after minutes of training or packing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.core.errors import UserError


def cannot_write_in(folder: Path) -> str | None:
    """Why nothing can be written in `folder` (made, with its parents, when missing), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a nameless probe, gone when closed
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def writable_folder(folder: Path, option: str) -> None:
    """Refuse an output folder that cannot be written (under a file, read-only, no permission)."""
    reason = cannot_write_in(folder)
    if reason is not None:
        raise UserError(f"cannot write to the output folder {folder}: {reason}. Choose another with {option}.")


def writable_file(out: Path, option: str, what: str, example: str) -> None:
    """Refuse an output file path that is a folder, or whose folder cannot be written."""
    if out.is_dir():
        raise UserError(f"{what}: {option} {out} is a folder; give the file's name, e.g. {out / example}")
    reason = cannot_write_in(out.parent)
    if reason is not None:
        raise UserError(f"{what}: cannot write {out}: {reason}; choose another path with {option}")
