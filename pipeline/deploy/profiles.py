"""Device profiles: what a target board is, and the budgets a model must meet on it.

A profile is data (YAML under `devices/`, or any file path); this module validates it like a recipe.

Device latency is estimated from the host's *single-thread* latency, so the estimate does not depend
on how many cores the host has: `latency_factor` (device one-thread time / host one-thread time)
scales it to the device, and `thread_speedup` (device time at one thread / at its `threads`) models
how the device gains from its threads. Both are nominal until an on-device run calibrates them; only
the `host` profile (one thread, factor 1, measured here) reports latency as `measured`. The same
factor scales every runtime's host timing: a runtime tuned for Arm (ncnn, XNNPACK) may gain more on
the device than on this x86 host, which only an on-device run of that runtime's bundle shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices import PROFILES_DIR
from devices.on_device.runtimes import RUNNERS
from pipeline.core.config_errors import format_validation_error
from pipeline.core.errors import DeviceProfileError
from pipeline.deploy import this_machine
from pipeline.deploy.variant_choice import PREFERENCES

CPU_CLASSES = ("cortex-a53", "cortex-a55", "cortex-a57", "cortex-a72", "cortex-a76", "x86-64")
RUNTIMES = tuple(RUNNERS)  # onnxruntime, openvino, ncnn, executorch


class Budgets(BaseModel):
    """Limits a deployable model must meet; a budget left out is not checked."""

    model_config = ConfigDict(extra="forbid")

    max_size_kb: float | None = Field(None, gt=0, description="ONNX file size on disk, KiB")
    max_size_gzip_kb: float | None = Field(None, gt=0, description="ONNX file size gzipped, KiB (what an over-the-air update sends)")
    max_latency_p90_ms: float | None = Field(None, gt=0, description="90th percentile latency at batch 1, ms (estimated for the device)")
    min_accuracy: float | None = Field(
        None, ge=0, le=1, description="accuracy of the exported model, 0..1: on validation to choose a file, on test for the verdict"
    )
    max_accuracy_drop: float | None = Field(
        None, ge=0, le=100, description="points lost vs the uncompressed float model, each on the same split (validation to choose, test to judge)"
    )
    max_peak_memory_mb: float | None = Field(
        None, gt=0, description="peak resident memory of a process that loads the model and runs it (Python + onnxruntime included), MB"
    )
    min_map: float | None = Field(
        None, ge=0, le=1, description="detection: COCO mAP (or the recipe's metric) of the exported model, 0..1; validation to choose, test to judge"
    )
    max_map_drop: float | None = Field(None, ge=0, le=100, description="detection: mAP points lost vs the uncompressed float model")

    def for_task(self, task: str) -> dict[str, float]:
        """The budgets set, less those of another task: a profile may hold a classifier's accuracy
        floor and a detector's mAP floor at once, and each recipe is judged by its own."""
        return {name: limit for name, limit in self.model_dump(exclude_none=True).items() if TASK_BUDGETS.get(name, task) == task}


TASK_BUDGETS = {"min_accuracy": "classification", "max_accuracy_drop": "classification", "min_map": "detection", "max_map_drop": "detection"}


class Board(BaseModel):
    """A real board of this profile, reached over SSH with the system `ssh`/`scp` client: key-based
    login only (BatchMode: a password is never asked for or stored). `compress board check/run`."""

    model_config = ConfigDict(extra="forbid")

    ssh: str = Field(pattern=r"^[A-Za-z0-9_\[][A-Za-z0-9_.@:\[\]-]*$",  # never a leading '-': ssh would read it as an option
                     description="user@host, or a Host of the SSH config")
    port: int | None = Field(None, ge=1, le=65535, description="default: the SSH config's, else 22")
    ssh_config: str | None = Field(None, description="an SSH config file to use instead of ~/.ssh/config (identity, known hosts, jump host)")
    python: str = Field("python3", min_length=1, description="the board's Python 3.8+ with numpy and the model's runtime")
    workdir: str = Field("/tmp/edge-compress", min_length=1, description="where bundles are copied and run on the board")
    timeout_s: float = Field(600, gt=0, description="a run on the board longer than this is killed there and reported")
    emulated: bool = Field(False, description="an emulator (qemu-user), not the device: its timings are never used as the device's")


class DeviceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    cpu: Literal[CPU_CLASSES] = Field(description="CPU core class; decides nothing by itself, but an unknown one is a typo")
    cores: int = Field(ge=1)
    threads: int = Field(ge=1, description="onnxruntime intra-op threads to use on this device")
    int8_dot_product: bool = Field(description="has INT8 dot-product instructions (Arm dotprod / x86 VNNI)")
    memory_mb: int = Field(ge=1, description="RAM")
    storage_mb: int = Field(ge=1, description="storage available for the model and runtime")
    latency_factor: float = Field(gt=0, description="device latency = host latency x this factor")
    latency_factor_source: Literal["measured", "nominal", "calibrated"] = Field(
        description="measured: the host itself; nominal: from public figures; calibrated: from an on-device run"
    )
    latency_factor_note: str = Field(min_length=1, description="how the factor was obtained")
    thread_speedup: float = Field(
        1.0, ge=1, description="device latency at one thread / at `threads` threads (1 for one thread); multiplies nothing on the host"
    )
    thread_speedup_source: Literal["nominal", "calibrated"] = Field("nominal", description="calibrated: from an on-device run at 1 and at `threads` threads")
    thread_speedup_note: str = Field("", description="how the speed-up was obtained (required when threads > 1)")
    sources: list[str] = Field(default_factory=list, description="where the figures come from (datasheets, product pages, calibration runs)")
    runtime_factors: dict[Literal[RUNTIMES], float] = Field(
        default_factory=dict, description="a runtime's own host-to-device factor where an on-device run of it calibrated one; others use latency_factor"
    )
    runtime_factors_note: str = Field("", description="how each runtime factor was obtained")
    runtimes: list[Literal[RUNTIMES]] = Field(
        default_factory=lambda: ["onnxruntime"], min_length=1,
        description="the runtimes an app on this device can run; validate ships the fastest passing file among them (of those export built)",
    )
    budgets: Budgets = Field(description="at least one: a device with nothing to judge would pass any model")
    boards: list[Board] = Field(default_factory=list, description="real boards of this device, for `compress board check/run`")
    prefer: Literal[PREFERENCES] = Field(
        "latency", description="among files that meet every budget on validation, the one that ships: the fastest beyond the timing "
        "noise (latency), the most accurate on the validation split (accuracy) or the smallest (size); the report states what it traded",
    )

    @model_validator(mode="after")
    def _threads_and_sources(self) -> "DeviceProfile":
        if self.threads > self.cores:
            raise ValueError(f"threads ({self.threads}) is more than the device's cores ({self.cores})")
        if self.latency_factor_source != "measured" and not self.sources:
            raise ValueError("sources: a nominal or calibrated profile must say where its figures come from")
        if self.thread_speedup > self.threads:
            raise ValueError(f"thread_speedup ({self.thread_speedup}) cannot exceed threads ({self.threads})")
        if self.threads > 1 and not self.thread_speedup_note:
            raise ValueError(f"thread_speedup_note: a {self.threads}-thread profile must say where its thread_speedup ({self.thread_speedup}) comes from")
        if self.latency_factor_source == "measured" and self.threads != 1:
            raise ValueError("latency_factor_source measured means the host's own one-thread timing, so threads must be 1")
        if any(f <= 0 for f in self.runtime_factors.values()):
            raise ValueError(f"runtime_factors: every factor must be above 0 (got {self.runtime_factors})")
        if self.runtime_factors and not self.runtime_factors_note:
            raise ValueError("runtime_factors_note: say where the runtime factors come from (a calibration run)")
        if not self.budgets.model_dump(exclude_none=True):
            raise ValueError(f"budgets: the profile sets none, so it would pass any model; set at least one of {', '.join(Budgets.model_fields)}")
        return self

    def estimate_ms(self, host_one_thread_ms: float, runtime: str = "onnxruntime") -> float:
        """The device's latency at its thread count, from the host's one-thread latency in the same
        runtime: the runtime's calibrated factor where there is one, else the profile's."""
        factor = self.runtime_factors.get(runtime, self.latency_factor)
        return round(host_one_thread_ms * factor / self.thread_speedup, 5)

    @property
    def latency_kind(self) -> str:
        """`measured` only where the host is the device itself."""
        return "measured" if self.latency_factor_source == "measured" else "estimated"


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> DeviceProfile:
    """A shipped profile by name, or a user profile by file path."""
    path = Path(name_or_path).expanduser()
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = PROFILES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise DeviceProfileError(
                f"unknown device '{name_or_path}'; known: {', '.join(known_profiles())} (or give the path of a profile .yaml)"
            )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise DeviceProfileError(f"{path}: not valid YAML: {e}") from None
    if isinstance(raw, dict):
        raw = this_machine.fill_in(raw, str(path))  # `cores: detect` and the like: the machine this runs on
    try:
        return DeviceProfile.model_validate(raw)
    except ValidationError as e:
        raise DeviceProfileError(f"{path}: invalid device profile:\n{format_validation_error(e, DeviceProfile)}") from None
