"""Exporters: a plain nn.Module + an example input + metadata in, deployable files out.

They depend on torch, onnx and onnxruntime only, never on `pipeline`, so they can be used alone.
"""

from exporters.onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    ExportResult,
    ParityError,
    export_onnx,
    extract_segment,
    onnx_logits,
    onnx_outputs,
    set_metadata,
)

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ExportResult", "ParityError", "export_onnx", "extract_segment", "onnx_logits", "onnx_outputs", "set_metadata"]
