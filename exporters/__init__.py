"""Exporters: a plain nn.Module + an example input + metadata in, deployable files out, each checked
in its own runtime (ONNX Runtime, ExecuTorch, ncnn, OpenVINO) against PyTorch.

They depend on torch, onnx and the runtime they export to, never on `pipeline`, so they can be used
alone. The runtimes other than ONNX Runtime are optional packages, imported when used.
"""

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

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ExportResult", "ExportUnsupported", "ParityError", "export_onnx", "extract_segment", "onnx_logits", "onnx_outputs", "set_metadata"]
