"""The host's side of a runtime: how its file is made from the model and the checked ONNX file, and
whether and how it gets an INT8 file.

The device's side (package, file suffix, runner) is the runner class in
`devices/on_device/runtimes.py`, which ships to the board; this is what only the host needs. Each
exporter module declares one `RuntimeExporter` as `EXPORTER`, and `exporters.EXPORTERS` lists them:
adding a runtime is a runner class and an exporter module, and every stage, the bundle and the docs
read what they need from the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from exporters.parity import ExportResult

# (module, onnx_file, path, parity_inputs, metadata, *, int8_calibration, max_abs_diff, min_top1_agreement) -> ExportResult
ExportFile = Callable[..., ExportResult]


@dataclass(frozen=True)
class RuntimeExporter:
    runtime: str  # a key of devices.on_device.runtimes.RUNNERS
    export: Optional[ExportFile]  # None: the file is the ONNX file the export stage itself makes
    int8: str  # how its INT8 file is made, as the docs and the quantize stage's log say it; "" when it has none
    no_int8: str = ""  # why it has no INT8 file
    name_mark: str = ""  # between a file's stem and its suffix: model.ncnn.param
    int8_from_qdq: bool = False  # its INT8 file is read from a QDQ ONNX file, so it needs the quantize route to write one

    def __post_init__(self):
        if bool(self.int8) == bool(self.no_int8):
            raise ValueError(f"exporter {self.runtime}: say how its INT8 file is made, or why it has none (one of the two)")

    def make(
        self, module: nn.Module, onnx_file: Path, path: Path, parity_inputs: torch.Tensor, metadata: dict[str, str], *,
        int8_calibration: torch.Tensor | None = None, max_abs_diff: float = 1e-3, min_top1_agreement: float = 0.99,
    ) -> ExportResult:
        """`path` for this runtime, parity-checked in it: FP32, or INT8 from `int8_calibration` samples."""
        if self.export is None:
            raise ValueError(f"{self.runtime}: its file is the export stage's ONNX file, not made here")
        if int8_calibration is not None and not self.int8:
            raise ValueError(f"{self.runtime} has no INT8 file: {self.no_int8}")
        return self.export(module, onnx_file, path, parity_inputs, metadata, int8_calibration=int8_calibration,
                           max_abs_diff=max_abs_diff, min_top1_agreement=min_top1_agreement)
