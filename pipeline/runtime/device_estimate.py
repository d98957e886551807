"""What a model costs on a device, measured, for pruning toward a device budget.

The model is exported to a temporary FP32 ONNX file and timed in onnxruntime the way `validate`
does it (batch 1, the profile's thread count, host latency times the profile's factor), so a
`prune` target like `{device: raspberry-pi-4, latency_p90_ms: 1.0}` is judged on the same figure
the gate will later read. MACs are not latency (odd channel counts and thin layers cost time), so
nothing here is inferred from MACs.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.runtime.onnx_files import measure_latency


def measure_on_device(model: nn.Module, input_shape: tuple[int, ...], threads: int, latency_factor: float, runs: int = 100) -> dict:
    """{size_kb, latency_p90_ms (for the device), host_p90_ms} of `model` as FP32 ONNX, timed with the
    device's thread count and scaled by its host-to-device factor."""
    module = copy.deepcopy(model).cpu().eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "candidate.onnx"
        torch.onnx.export(module, (torch.zeros(1, *input_shape),), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"])
        size_kb = path.stat().st_size / 1024
        host = measure_latency(path, np.zeros((1, *input_shape), dtype=np.float32), threads, warmup=10, runs=runs)
    return {
        "size_kb": round(size_kb, 3),
        "latency_p90_ms": round(host["p90"] * latency_factor, 5),
        "host_p90_ms": host["p90"],
    }
