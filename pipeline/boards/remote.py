"""Work in a folder of its own on a board: what the board must have for it, the folder made fresh
under the board's `workdir` and removed afterwards whatever happened, and a command run there under
the board's time limit with a hang, a full disk or a failure said plainly. `board run` (a bundle)
and `validate` (candidate files timed on the board) both work this way.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from devices.on_device.runtimes import RUNNERS
from pipeline.boards import ssh
from pipeline.deploy.profiles import Board

log = logging.getLogger("compress")
ROOM_FACTOR = 3  # the payload, its unpacked copy and the results, with room to spare


def require(board: Board, found: dict, runtimes: list[str], payload: Path) -> None:
    """Numpy and each runtime must import with the board's Python, and its workdir must hold the payload."""
    missing = ([] if found.get("numpy") else ["numpy"]) + [
        RUNNERS[r].package for r in dict.fromkeys(runtimes) if not (found.get("runtimes") or {}).get(r)]
    if missing:
        raise ssh.BoardError(f"board {ssh.name(board)}: {' and '.join(missing)} do not import with `{board.python}`; on the board: "
                             f"{board.python} -m pip install {' '.join(missing)}")
    need_mb = ROOM_FACTOR * payload.stat().st_size / 2**20 + 1
    if found.get("workdir_free_mb") is not None and found["workdir_free_mb"] < need_mb:
        raise ssh.BoardError(f"board {ssh.name(board)}: out of disk: {found['workdir_free_mb']} MB free in {board.workdir}, the payload needs "
                             f"about {need_mb:.0f} MB; free some, or set the board's `workdir` to a folder with room")


@contextlib.contextmanager
def fresh_folder(board: Board, prefix: str) -> Iterator[str]:
    """A new folder `workdir/<prefix>-<id>` on the board, removed when the work is done or failed."""
    remote = f"{board.workdir.rstrip('/')}/{prefix}-{uuid.uuid4().hex[:12]}"
    made = ssh.run(board, f"mkdir -p {shlex.quote(remote)}")
    if made.returncode:
        raise ssh.BoardError(f"board {ssh.name(board)}: cannot make {remote}: {made.stderr.strip()[-300:]}")
    try:
        yield remote
    finally:
        try:
            ssh.run(board, f"rm -rf {shlex.quote(remote)}")
        except ssh.BoardError:  # the board went away mid-run: the error that stopped the run is the one to show
            log.warning(f"board {ssh.name(board)}: could not remove {remote}")


def unpack_and_run(board: Board, remote: str, payload: str, command: str, slower_fix: str = "") -> subprocess.CompletedProcess:
    """Unzip `payload` (a zip already copied into `remote`) into `remote/<its stem>` and run `command`
    in `remote` under the board's time limit; a kill, a full disk or a crash is a BoardError, an exit
    of 0, 1 or 2 (the script's verdicts) is returned. `slower_fix`: what else shortens the run, said
    when it is killed."""
    q = shlex.quote
    ran = ssh.run(board, f"cd {q(remote)} && {board.python} -m zipfile -e {q(payload)} {q(Path(payload).stem)} && {command}", board.timeout_s)
    if ran.returncode in ssh.KILLED:
        raise ssh.BoardError(f"board {ssh.name(board)}: the run took longer than {board.timeout_s:g} s and was killed on the board; "
                             f"raise the board's `timeout_s` if it is that slow{slower_fix}")
    said = (ran.stderr.strip() or ran.stdout.strip())[-600:]
    if "No space left" in said:
        raise ssh.BoardError(f"board {ssh.name(board)}: out of disk in {board.workdir} while unpacking or running; free some, "
                             "or set the board's `workdir` to a folder with room")
    if ran.returncode not in (0, 1, 2):
        raise ssh.BoardError(f"board {ssh.name(board)}: the script failed (exit {ran.returncode}): {said}")
    return ran
