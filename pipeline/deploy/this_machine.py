"""The machine this process runs on, as a device profile's fields: what the `host` profile states
instead of fixed figures (`cores: detect` and the like), so it describes the CI runner or the laptop
it judges on, not the machine it was written on.

Linux is read from /proc; elsewhere the standard library's view (cores, CPU class) is used and the
rest is left as the profile wrote it.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

DETECT = "detect"


def cpu_class() -> str:
    """x86-64 for any 64-bit x86; an Arm machine as its core where /proc names it, else cortex-a72 (the Pi 4's)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86-64"
    parts = {"0xd03": "cortex-a53", "0xd05": "cortex-a55", "0xd07": "cortex-a57", "0xd08": "cortex-a72", "0xd0b": "cortex-a76"}
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("CPU part"):
            return parts.get(line.split(":")[1].strip().lower(), "cortex-a72")
    return "cortex-a72"


def int8_dot_product() -> bool | None:
    """x86 VNNI (AVX-512 or AVX) or Arm dotprod, from the CPU's flags; None where they cannot be read."""
    info = _read("/proc/cpuinfo")
    if not info:
        return None
    flags = {word for line in info.splitlines() if line.split(":")[0].strip() in ("flags", "Features") for word in line.split(":", 1)[1].split()}
    return bool(flags & {"avx512_vnni", "avx_vnni", "asimddp"})


def memory_mb() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def detected() -> dict:
    """Every field this module can read here; a field it cannot read is absent."""
    found = {
        "cpu": cpu_class(),
        "cores": os.cpu_count() or 1,
        "int8_dot_product": int8_dot_product(),
        "memory_mb": memory_mb(),
        "storage_mb": shutil.disk_usage(Path.cwd()).total // 2**20,  # the disk's size, not its free space: a profile that changed with every file written would re-run validate on every resume
    }
    return {k: v for k, v in found.items() if v is not None}


def fill_in(raw: dict, where: str) -> dict:
    """The profile with each `detect` value replaced by this machine's; a field that cannot be read
    here is an error naming it (write the value in the profile instead)."""
    asked = [k for k, v in raw.items() if v == DETECT]
    if not asked:
        return raw
    found = detected()
    missing = [k for k in asked if k not in found]
    if missing:
        from pipeline.core.errors import DeviceProfileError

        raise DeviceProfileError(f"{where}: {', '.join(missing)}: cannot be detected on this machine; write the value in the profile")
    return {**raw, **{k: found[k] for k in asked}}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
