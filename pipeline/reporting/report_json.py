"""report.json: the stable contract CI scripts read (see docs/report.md for every field)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipeline.core.state import deployable
from pipeline.deploy.budgets import overall

SCHEMA_VERSION = 1
STANDARD_METRICS = ("accuracy", "params", "macs", "size_bytes")
OPTIONAL_METRICS = ("heads_accuracy",)  # present only for stages whose model had auxiliary heads


@dataclass
class StageRecord:
    name: str
    folder: str
    status: str = "pending"  # pending | ran | resumed | failed
    seconds: float | None = None
    metrics: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "folder": self.folder,
            "status": self.status,
            "seconds": self.seconds,
            "metrics": {k: self.metrics.get(k) for k in STANDARD_METRICS}
            | {k: self.metrics[k] for k in OPTIONAL_METRICS if self.metrics.get(k) is not None},
            "details": f"{self.folder}/metrics.json" if self.status in ("ran", "resumed") else None,
        }


def environment() -> dict:
    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": pkg("torch"),
        "onnx": pkg("onnx"),
        "onnxruntime": pkg("onnxruntime"),
        "torch_pruning": pkg("torch-pruning"),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_report(
    recipe_meta: dict, records: list[StageRecord], artifacts: dict, artifact_sha256: dict, reference: dict, devices: dict, env: dict
) -> dict:
    verdicts = [d.get("passed") for d in devices.values()]
    return {
        "schema_version": SCHEMA_VERSION,
        "recipe": recipe_meta,
        "environment": env,
        "stages": [r.to_json() for r in records],
        "reference": reference,
        "artifacts": {"onnx_fp32": artifacts.get("onnx_fp32"), "onnx_int8": artifacts.get("onnx_int8"), **deployable(artifacts)},
        "artifact_sha256": {k: v for k, v in artifact_sha256.items() if k in deployable(artifacts)},
        "devices": devices,
        "passed": overall({n: {"passed": v} for n, v in zip(devices, verdicts)}) if devices else None,
    }
