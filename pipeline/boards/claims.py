"""What a board's own answers say against the host's expectations: the profile's claims it
contradicts, and whether results it sent back are of the bundle it was given. Plain functions over
plain data, so each check is tested (and mutation-tested) without a board.
"""

from __future__ import annotations

from devices.on_device.runtimes import RUNNERS
from pipeline.deploy.calibration import ARCHITECTURES
from pipeline.deploy.profiles import DeviceProfile

MEMORY_TOLERANCE = 0.25  # a board's RAM may differ this much from the profile's (what the OS keeps for itself, a model with more)


def contradictions(found: dict, profile: DeviceProfile) -> list[str]:
    """The profile's claims the board's own answer contradicts."""
    problems = []
    family = "x86" if profile.cpu == "x86-64" else "arm"
    machine = str(found.get("machine", "")).lower()
    if machine and machine not in ARCHITECTURES[family]:
        problems.append(f"cpu: the profile says {profile.cpu} ({family}), the board is {machine}")
    if found.get("cores") is not None and found["cores"] != profile.cores:
        problems.append(f"cores: the profile says {profile.cores}, the board has {found['cores']}")
    if found.get("cpu") and bool(found.get("int8_dot_product")) != profile.int8_dot_product:
        problems.append(f"int8_dot_product: the profile says {str(profile.int8_dot_product).lower()}, the board's CPU flags say "
                        f"{str(bool(found.get('int8_dot_product'))).lower()}")
    if found.get("memory_mb") and abs(found["memory_mb"] - profile.memory_mb) > MEMORY_TOLERANCE * profile.memory_mb:
        problems.append(f"memory_mb: the profile says {profile.memory_mb}, the board has {found['memory_mb']}")
    if found.get("numpy") is None:
        problems.append("numpy does not import on the board: the bundle's script needs it (pip install numpy)")
    for runtime in profile.runtimes:
        if (found.get("runtimes") or {}).get(runtime) is None:
            problems.append(f"runtimes: the profile lists {runtime}, which does not import on the board (pip install {RUNNERS[runtime].package})")
    return problems



def foreign_results(results: dict, manifest: dict, device: str) -> str | None:
    """Why results a board sent back are not of the bundle it was given (another model or device), or None."""
    model, wanted = results.get("model_sha256"), manifest["model"]["sha256"]
    if model != wanted:
        return f"the results are of model {str(model)[:16]}…, not of the bundle's {wanted[:16]}…"
    if results.get("device") != device:
        return f"the results are of device {results.get('device')!r}, not {device!r}"
    return None
