"""The parity rule every exporter applies: the file, run in its own runtime, must give PyTorch's outputs.

One rule for all runtimes, so "passed parity" means the same for an ONNX, ExecuTorch, ncnn or
OpenVINO file: on real samples, the largest |difference| of any output within `max_abs_diff`, and
the decision (a classifier's predicted class, a detector's decoded objects: `decisions.py`) the same
on at least `min_top1_agreement` of them.
A file that fails is renamed `*.rejected` (all its files: ncnn and OpenVINO keep weights in a .bin)
and never shipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from devices.on_device.decisions import output_agreement
from devices.on_device.runtimes import model_files


class ParityError(Exception):
    """The exported file's outputs differ from PyTorch's beyond tolerance."""


class ExportUnsupported(Exception):
    """The model holds an operator the runtime's exporter cannot take (the message names it)."""


def first_line(error: Exception) -> str:
    """The part of an exporter's exception a user needs: its first line, where the operator is named."""
    text = str(error).strip()
    return text.splitlines()[0][:400] if text else type(error).__name__


@dataclass
class ExportResult:
    path: Path
    max_abs_diff: float
    top1_agreement: float
    parity_samples: int
    runtime: str = "onnxruntime"
    details: dict = field(default_factory=dict)  # what the exporter knows of the file (ExecuTorch: which ops its delegate took)

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def torch_outputs(module: nn.Module, inputs: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(inputs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def check_parity(
    expected: list[np.ndarray], got: list[np.ndarray], path: Path, runtime: str, max_abs_diff: float, min_top1_agreement: float
) -> ExportResult:
    """Compare the runtime's outputs with PyTorch's; raise `ParityError` naming the runtime and the
    first output that diverges (and reject the files) when they disagree."""
    path = Path(path)
    if len(got) != len(expected):
        reject(path)
        raise ParityError(f"{runtime} export of {path.name} has {len(got)} output(s), PyTorch {len(expected)}. The file was not shipped.")
    diffs, agreements = [], []
    for e, g in zip(expected, got):
        if e.shape != g.shape:
            reject(path)
            raise ParityError(f"{runtime} export of {path.name}: output {len(diffs)} has shape {list(g.shape)}, PyTorch's {list(e.shape)}. The file was not shipped.")
        diffs.append(float(np.abs(e - g).max()))
        agreements.append(output_agreement(e, g))
    result = ExportResult(path=path, max_abs_diff=max(diffs), top1_agreement=min(agreements), parity_samples=len(expected[0]), runtime=runtime)
    failing = [k for k, (d, a) in enumerate(zip(diffs, agreements)) if d > max_abs_diff or a < min_top1_agreement]
    if failing:
        k = failing[0]
        reject(path)
        raise ParityError(
            f"{runtime} export of {path.name} disagrees with PyTorch on {result.parity_samples} real samples: "
            f"output {k} first diverges, max |diff| {diffs[k]:.3g} (limit {max_abs_diff}), top-1 agreement "
            f"{agreements[k]:.4f} (minimum {min_top1_agreement}). The file was not shipped "
            f"(kept as {path.name}.rejected for inspection)."
        )
    return result


def reject(path: Path) -> None:
    for file in model_files(path):
        if file.exists():
            file.replace(file.with_name(file.name + ".rejected"))


def write_sidecar(path: Path, metadata: dict[str, str] | None) -> None:
    """Runtimes whose files hold no free-form metadata get it beside them: `model.pte` → `model.pte.json`."""
    if metadata:
        Path(str(path) + ".json").write_text(json.dumps(metadata, indent=2) + "\n")
