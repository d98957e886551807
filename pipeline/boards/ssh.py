"""Reaching a board: the system `ssh` and `scp` clients, key-based only, with what went wrong said plainly.

The system client is what a user has already set up and tested (`~/.ssh/config`, agents, jump
hosts, known hosts), so nothing here stores a key or a password: `BatchMode=yes` makes ssh fail
instead of asking for one. A command on the board runs under the board's own `timeout`, so a hang
is stopped there, not left behind; the local call waits a little longer as a guard.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from pipeline.core.errors import UserError
from pipeline.deploy.profiles import Board

CONNECT_SECONDS = 10
KILLED = (124, 137)  # `timeout` on the board: the command ran past its limit (stopped by TERM, or by KILL 5 s later)
GUARD_SECONDS = 30  # the local wait beyond the board's own limit


class BoardError(UserError):
    """Nothing could be judged on the board: exit 2, like `compress gate` when it cannot judge."""

    exit_code = 2


def name(board: Board) -> str:
    return board.ssh + (f":{board.port}" if board.port else "")


def _options(board: Board, port_flag: str) -> list[str]:
    options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_SECONDS}"]
    if board.ssh_config:
        options += ["-F", str(Path(board.ssh_config).expanduser())]
    if board.port:
        options += [port_flag, str(board.port)]
    return options


def run(board: Board, command: str, timeout_s: float | None = None) -> subprocess.CompletedProcess:
    """Run a shell command on the board (killed there after `timeout_s`); its output, whatever its exit."""
    if timeout_s is not None:
        # TERM first: `timeout` signals its whole process group, and a KILL would kill `timeout` itself, which
        # ssh reports as 255 (a lost connection) instead of the 124 that says "ran too long"
        command = f"timeout -k 5 {int(timeout_s)} sh -c {shlex.quote(command)}"
    try:
        done = subprocess.run(["ssh", *_options(board, "-p"), board.ssh, command], capture_output=True, text=True,
                              timeout=(timeout_s or 0) + CONNECT_SECONDS + GUARD_SECONDS)
    except subprocess.TimeoutExpired:
        raise BoardError(f"board {name(board)}: no answer within {(timeout_s or 0) + CONNECT_SECONDS + GUARD_SECONDS:.0f} s; "
                         "the connection hangs (a firewall dropping packets, or the board stalled)") from None
    if done.returncode == 255:
        raise BoardError(_connection_problem(board, done.stderr))
    return done


def copy_to(board: Board, local: Path, remote: str) -> None:
    _scp(board, [str(local), f"{board.ssh}:{remote}"], f"copy {local.name} to the board")


def copy_from(board: Board, remote: str, local: Path) -> None:
    _scp(board, [f"{board.ssh}:{remote}", str(local)], f"fetch {remote} from the board")


def _scp(board: Board, paths: list[str], what: str) -> None:
    try:
        done = subprocess.run(["scp", "-q", *_options(board, "-P"), *paths], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise BoardError(f"board {name(board)}: could not {what} within 600 s") from None
    if done.returncode:
        text = done.stderr.strip()
        if "No space left" in text or "Disk quota" in text:
            raise BoardError(f"board {name(board)}: out of disk in {board.workdir} while trying to {what}; free some, or set "
                             "the board's `workdir` to a folder with room")
        if done.returncode == 255 or "Permission denied (" in text or "Connection" in text:
            raise BoardError(_connection_problem(board, text))
        raise BoardError(f"board {name(board)}: could not {what}: {text.splitlines()[-1] if text else f'scp exit {done.returncode}'}")


def _connection_problem(board: Board, stderr: str) -> str:
    """What ssh's exit 255 means, in a sentence with the fix."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else "ssh exit 255"
    where = f"board {name(board)}"
    if "Permission denied" in text:
        return (f"{where}: authentication refused ({last}). Log in with a key: `ssh-copy-id {board.ssh}`, then check that "
                f"`ssh -o BatchMode=yes {board.ssh} true` works; passwords are never used")
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return f"{where}: its host key is unknown or changed ({last}); connect once by hand (`ssh {board.ssh}`) and check the key"
    if any(s in text for s in ("Connection refused", "timed out", "No route to host", "Could not resolve", "Network is unreachable",
                               "Connection closed", "Name or service not known")):
        return f"{where}: unreachable ({last}). Is it on, on this network, and running an SSH server? `ssh {board.ssh} true` must work"
    return f"{where}: ssh failed: {last}"
