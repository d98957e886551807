"""`compress board check NAME`: what each board of a profile has, and which of the profile's claims it contradicts.

A short standard-library script runs on the board with the board's Python and prints one JSON line:
the instruction set, cores, CPU name and INT8 dot-product flags, Python and numpy versions, which
runtime packages import (and their versions), memory, and the free disk of the work folder. The host
compares it with the profile; a contradiction is reported, not fixed: the profile is the user's claim.
"""

from __future__ import annotations

import json
import shlex

from devices.on_device.runtimes import RUNNERS
from pipeline.boards import ssh
from pipeline.boards.claims import contradictions
from pipeline.core.errors import UserError
from pipeline.deploy.profiles import Board, DeviceProfile

PROBE = r'''
import json, os, platform, sys, importlib
def version(module):
    try:
        m = importlib.import_module(module)
    except Exception as e:
        return None
    return getattr(m, "__version__", "") or "unknown"
def meminfo(key):
    try:
        for line in open("/proc/meminfo"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
cpu, flags = "", ""
try:
    for line in open("/proc/cpuinfo"):
        k, _, v = line.partition(":")
        k = k.strip().lower()
        if k in ("model name", "hardware", "cpu part") and not cpu:
            cpu = v.strip()
        if k in ("flags", "features") and not flags:
            flags = v.strip()
except OSError:
    pass
work = sys.argv[1]
os.makedirs(work, exist_ok=True)
st = os.statvfs(work)
print(json.dumps({
    "machine": platform.machine(), "system": platform.system(), "python": platform.python_version(),
    "cores": os.cpu_count(), "cpu": cpu, "int8_dot_product": any(f in flags.split() for f in ("asimddp", "avx512_vnni", "avx_vnni")),
    "numpy": version("numpy"), "runtimes": {name: version(module) for name, module in json.loads(sys.argv[2]).items()},
    "memory_mb": meminfo("MemTotal"), "memory_available_mb": meminfo("MemAvailable"),
    "workdir_free_mb": st.f_bavail * st.f_frsize // 2**20,
}))
'''
PROBE_SECONDS = 120  # importing a runtime under emulation takes a while


def boards_of(profile: DeviceProfile) -> list[Board]:
    """The profile's boards; none is an error saying how to name one."""
    if not profile.boards:
        raise UserError(
            f"device {profile.name} names no boards: add `boards: [{{ssh: user@host}}]` to a copy of its profile "
            f"(`compress devices show {profile.name} > my-{profile.name}.yaml`) and pass that file as --device")
    return profile.boards


def probe(board: Board) -> dict:
    """What the board has (one JSON line from the probe script); a missing Python is a clear error."""
    modules = json.dumps({name: cls.package for name, cls in RUNNERS.items()})
    command = f"{board.python} -c {shlex.quote(PROBE)} {shlex.quote(board.workdir)} {shlex.quote(modules)}"
    done = ssh.run(board, command, PROBE_SECONDS)
    if done.returncode == 127 or "not found" in done.stderr and done.returncode:
        raise ssh.BoardError(f"board {ssh.name(board)}: no Python at `{board.python}` ({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'not found'}); "
                             "install Python 3.8+ there, or set the board's `python` to its path")
    if done.returncode:
        raise ssh.BoardError(f"board {ssh.name(board)}: the probe failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ssh.BoardError(f"board {ssh.name(board)}: the probe printed no result: {done.stdout[-300:]!r} {done.stderr[-300:]!r}") from None


def describe(found: dict) -> str:
    runtimes = ", ".join(f"{n} {v}" for n, v in (found.get("runtimes") or {}).items() if v) or "none"
    return (f"{found.get('machine')} {found.get('system')}, {found.get('cores')} cores ({found.get('cpu') or 'cpu name unknown'}; "
            f"INT8 dot product: {'yes' if found.get('int8_dot_product') else 'no'}), Python {found.get('python')}, "
            f"numpy {found.get('numpy') or 'missing'}, runtimes: {runtimes}; memory {found.get('memory_mb')} MB "
            f"({found.get('memory_available_mb')} MB available), {found.get('workdir_free_mb')} MB free in the work folder")


def check_boards(device: str) -> tuple[list[str], int]:
    """`compress board check`: a paragraph per board, and the exit code (1 if any contradicts the profile)."""
    from pipeline.deploy.profiles import load_profile

    profile = load_profile(device)
    lines, worst = [], 0
    for board in boards_of(profile):
        found = probe(board)
        problems = contradictions(found, profile)
        lines.append(f"board {ssh.name(board)}{' (emulated)' if board.emulated else ''}: {describe(found)}")
        lines += [f"  contradicts the profile: {problem}" for problem in problems]
        lines.append(f"  {len(problems)} contradiction(s)" if problems else "  agrees with the profile")
        worst = max(worst, 1 if problems else 0)
    return lines, worst
