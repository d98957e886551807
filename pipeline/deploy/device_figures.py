"""Deployable files measured once and judged per device: what `validate` (the stage) and
`compress validate MODEL.onnx` (a model made elsewhere) both report.

Each file (`Variant`) is measured on this host: size, gzip size, accuracy on the validation and
test splits (when there is data), one-thread latency (several files timed in interleaved rounds, so
host noise cannot pick the winner) and peak memory at each profile's thread count; where a profile
names a real board, also latency and memory on that board (`pipeline/boards/board_timing.py`). Each
device then gets its latency (measured on its board, else the estimate) and its budgets judged twice: on validation figures, which choose the file it
ships (`variant_choice`), and on test figures, which the gate judges. The two differ only in the
accuracy budgets; the report keeps both and says which one chose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devices.on_device import runtimes
from devices.on_device.measure import gzip_size
from pipeline.core.errors import StageError
from pipeline.core.state import artifact_width
from pipeline.deploy.budgets import VERDICT, judge, overall
from pipeline.deploy.choice_summary import candidates_table, headline
from pipeline.deploy.profiles import DeviceProfile
from pipeline.deploy.variant_choice import Candidate, choose
from pipeline.runtime.onnx_files import HOST_THREADS, measure_latencies, peak_memory_mb


@dataclass
class Variant:
    """One deployable file and what was measured of it, shared by every device."""

    name: str
    path: Path
    accuracy: float | None  # on the test split: the verdict's figure, never the choice's
    drop: float | None  # points below the reference test accuracy, when both are known
    val_accuracy: float | None = None  # on the validation split: what the choice reads
    val_drop: float | None = None  # points below the reference validation accuracy
    size: int = 0
    size_gzip: int = 0
    host_latency: dict = field(default_factory=dict)  # one-thread timing on the host
    peak_memory: dict[int, float | None] = field(default_factory=dict)  # per thread count
    on_board: dict[str, dict] = field(default_factory=dict)  # device -> {"board", "latency_ms", "peak_memory_mb"} measured on its board

    def __post_init__(self) -> None:
        files = runtimes.model_files(self.path)  # ncnn and OpenVINO: the graph and its .bin
        self.size, self.size_gzip = sum(f.stat().st_size for f in files), sum(gzip_size(f) for f in files)

    @property
    def runtime(self) -> str:
        return runtimes.runtime_of(self.path)


def measure(variants: list[Variant], sample: np.ndarray, profiles: list[DeviceProfile], warmup: int, runs: int) -> None:
    """Time every variant (one host thread, interleaved) and read its peak memory per thread count."""
    timed = measure_latencies({v.name: v.path for v in variants}, sample, HOST_THREADS, warmup, runs)
    for variant in variants:
        variant.host_latency = timed[variant.name]
        for threads in sorted({p.threads for p in profiles}):
            variant.peak_memory[threads] = peak_memory_mb(variant.path, threads, sample[:1].shape)


def judge_devices(variants: list[Variant], profiles: list[DeviceProfile], forced: dict[str, tuple[str, str]], log: logging.Logger,
                  task: str = "classification", label: str = "acc") -> dict[str, dict]:
    """Per device: the chosen variant's figures, budgets (those of the recipe's `task`) and verdict, and
    why it was chosen; `forced`: device -> (the file it ships, the field that forced it), for those
    whose file was chosen already; `label` names the metric in the log (acc, mAP)."""
    devices = {}
    for profile in profiles:
        admitted = [v for v in variants if v.runtime in profile.runtimes]
        if not admitted:
            raise StageError(
                f"device {profile.name} runs {', '.join(profile.runtimes)} (its profile's runtimes), and the files measured are for "
                f"{', '.join(sorted({v.runtime for v in variants}))} only: in a recipe, add the device's runtimes to export.runtimes (or `auto`); "
                f"for a file made elsewhere, judge it against a profile that admits its runtime"
            )
        judged = {variant.name: device_figures(variant, profile, task) for variant in admitted}
        candidates = [
            Candidate(
                name, entry["size_bytes"] / 1024, entry["latency_ms"]["p50"], entry["latency_ms"]["noise"], entry["budgets_on_validation"],
                artifact_width(name), entry["runtime"], entry["val_accuracy"], tuple(entry["latency_ms"]["rounds_p50"]),
            )
            for name, entry in judged.items()
        ]
        file, forced_by = forced.get(profile.name, (None, ""))
        chosen, reason = choose(candidates, forced=file, prefer=profile.prefer, forced_by=forced_by)
        summary = headline(chosen, candidates, profile.prefer, file, forced_by)
        entry = devices[profile.name] = {
            **judged[chosen.artifact],
            "choice": {
                "chosen_on": "validation",
                "prefer": profile.prefer,
                "summary": summary,
                "reason": reason,
                "candidates": {
                    name: {k: e[k] for k in ("runtime", "val_accuracy", "accuracy", "latency_ms", "size_bytes", "budgets_on_validation", "passed_on_validation", "passed")}
                    for name, e in judged.items()
                },
            },
        }
        log.info("\n".join([
            f"validate {profile.name}: {summary}",
            *candidates_table(chosen.artifact, entry["choice"]["candidates"], label),
            f"  on test, once: {chosen.artifact} {label} {_figure(entry['accuracy'])}, p90 {entry['latency_ms']['p90']:.3f} ms ({entry['latency_kind']}), "
            f"{entry['size_bytes'] / 1024:.1f} KiB -> {VERDICT[entry['passed']]}",
        ]))
    return devices


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def device_figures(variant: Variant, profile: DeviceProfile, task: str = "classification") -> dict:
    """One variant on one device: its latency (measured on the device's board when it was, else the
    estimate from the host's one-thread timing), and the budgets judged on it, on validation figures
    (`budgets_on_validation`: the choice reads these) and on test figures (`budgets`: the verdict and
    the gate). `noise` is the timing's p10-p90 width and `rounds_p50` the median of each interleaved
    round, scaled the same way: the choice compares files timed together round by round. A board's
    figures replace the estimate and the host's memory; the estimate stays beside them
    (`latency_estimate_ms`)."""
    measured = variant.host_latency
    estimate = {q: profile.estimate_ms(measured[q], variant.runtime) for q in ("p50", "p90", "p99")}
    estimate["noise"] = profile.estimate_ms(measured["spread"] * measured["p50"], variant.runtime)
    estimate["rounds_p50"] = [profile.estimate_ms(r, variant.runtime) for r in measured.get("rounds_p50", [])]
    board = variant.on_board.get(profile.name)
    if board:
        on_board = board["latency_ms"]
        latency = {q: on_board[q] for q in ("p50", "p90", "p99")} | {"noise": round(on_board["spread"] * on_board["p50"], 5), "rounds_p50": on_board.get("rounds_p50", [])}
        memory, latency_kind, memory_kind = board["peak_memory_mb"], f"measured on board {board['board']}", f"measured on board {board['board']}"
    else:
        latency, memory, latency_kind, memory_kind = estimate, variant.peak_memory[profile.threads], profile.latency_kind, "measured on the host"
    figures = {
        "size_kb": variant.size / 1024,
        "size_gzip_kb": variant.size_gzip / 1024,
        "latency_p90_ms": latency["p90"],
        "peak_memory_mb": memory,
    }
    budgets = judge(profile.budgets, {**figures, "accuracy": variant.accuracy, "accuracy_drop": variant.drop}, task)
    on_validation = judge(profile.budgets, {**figures, "accuracy": variant.val_accuracy, "accuracy_drop": variant.val_drop}, task)
    return {
        "artifact": variant.name,
        "runtime": variant.runtime,
        "accuracy": _rounded(variant.accuracy, 5),
        "accuracy_drop_points": _rounded(variant.drop, 4),
        "val_accuracy": _rounded(variant.val_accuracy, 5),
        "val_accuracy_drop_points": _rounded(variant.val_drop, 4),
        "latency_ms": latency,
        "latency_kind": latency_kind,
        **({"latency_estimate_ms": estimate, "estimate_kind": profile.latency_kind} if board else {}),
        "host_latency_ms": measured,
        "threads": profile.threads,
        "size_bytes": variant.size,
        "size_gzip_bytes": variant.size_gzip,
        "peak_memory_mb": memory,
        "peak_memory_kind": memory_kind,
        "budgets": budgets,
        "passed": overall(budgets),
        "budgets_on_validation": on_validation,
        "passed_on_validation": overall(on_validation),
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
