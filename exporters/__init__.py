"""Exporters: a plain nn.Module + an example input + metadata in, deployable files out, each checked
in its own runtime (ONNX Runtime, ExecuTorch, ncnn, OpenVINO) against PyTorch.

They depend on torch, onnx and the runtime they export to, never on `pipeline`, so they can be used
alone. The runtimes other than ONNX Runtime are optional packages, imported when used.

`EXPORTERS` maps each runtime to its `RuntimeExporter` (how the pipeline makes its file and its INT8
file); every runtime the on-device runners know has one, and a test holds the two lists equal.
"""

from exporters import executorch, ncnn, onnx, openvino
from exporters.onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_onnx,
    extract_segment,
    onnx_logits,
    onnx_outputs,
    set_metadata,
)
from exporters.parity import ExportResult, ExportUnsupported, ParityError
from exporters.runtime_exporter import RuntimeExporter

EXPORTERS: dict[str, RuntimeExporter] = {e.runtime: e for e in (onnx.EXPORTER, openvino.EXPORTER, ncnn.EXPORTER, executorch.EXPORTER)}

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ExportResult", "ExportUnsupported", "ParityError", "EXPORTERS", "RuntimeExporter", "export_onnx", "extract_segment", "onnx_logits", "onnx_outputs", "set_metadata"]
