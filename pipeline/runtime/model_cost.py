"""What a PyTorch model costs once exported, measured, for pruning toward a device budget.

The model is exported to a temporary FP32 ONNX file and timed in onnxruntime the way `validate`
times it (batch 1, one host thread), so a `prune` target like `{device: raspberry-pi-4,
latency_p90_ms: 1.0}` is judged on the same figure the gate will later read once the profile scales
it. MACs are not latency (odd channel counts and thin layers cost time), so nothing here is
inferred from MACs.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.runtime.onnx_files import HOST_THREADS, measure_latency


def measure_exported(model: nn.Module, input_shape: tuple[int, ...], runs: int = 100) -> dict:
    """{size_kb, host_p90_ms} of `model` as an FP32 ONNX file, timed on one host thread."""
    module = copy.deepcopy(model).cpu().eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "candidate.onnx"
        torch.onnx.export(module, (torch.zeros(1, *input_shape),), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["logits"])
        size_kb = path.stat().st_size / 1024
        host = measure_latency(path, np.zeros((1, *input_shape), dtype=np.float32), HOST_THREADS, warmup=10, runs=runs)
    return {"size_kb": round(size_kb, 3), "host_p90_ms": host["p90"]}
