"""What onnxruntime says about an exported file: accuracy, latency percentiles, and which compute runs in INT8."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from exporters import onnx_logits
from pipeline.data import Split

INT8_COMPUTE = {"QLinearConv", "QLinearMatMul", "QGemm", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}
FP32_COMPUTE = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose"}


def onnx_accuracy(path: Path, split: Split) -> float:
    logits = onnx_logits(path, split.x.numpy())
    return float((logits.argmax(1) == split.y.numpy()).mean())


def session(path: Path, threads: int, optimized_copy: Path | None = None) -> ort.InferenceSession:
    """A session as a device would run it: sequential, `threads` intra-op threads, all graph optimisations."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if optimized_copy is not None:
        options.optimized_model_filepath = str(optimized_copy)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_latency(path: Path, sample: np.ndarray, threads: int, warmup: int = 20, runs: int = 200) -> dict[str, float]:
    """Batch-1 latency in ms after warm-up: p50/p90/p99, mean, and the spread (p90 - p10) / p50."""
    sess = session(path, threads)
    feed = {sess.get_inputs()[0].name: np.ascontiguousarray(sample[:1], dtype=np.float32)}
    for _ in range(warmup):
        sess.run(None, feed)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        sess.run(None, feed)
        times[i] = (time.perf_counter_ns() - start) / 1e6
    p10, p50, p90, p99 = np.percentile(times, [10, 50, 90, 99])
    return {
        "p50": round(float(p50), 5),
        "p90": round(float(p90), 5),
        "p99": round(float(p99), 5),
        "mean": round(float(times.mean()), 5),
        "spread": round(float((p90 - p10) / p50), 4),
        "runs": runs,
        "threads": threads,
    }


def int8_coverage(path: Path) -> dict:
    """Count compute ops in the graph onnxruntime actually runs (after its optimisations).

    A QDQ file always looks quantized; only the optimised graph shows whether each conv became a
    QLinearConv or stayed in float between Q/DQ pairs (the usual reason "INT8 is slower than FP32").
    """
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        session(path, threads=1, optimized_copy=optimized)
        nodes = onnx.load(str(optimized)).graph.node
        ops = Counter(node.op_type for node in nodes)
        fp32_nodes = [node.name or node.output[0] for node in nodes if node.op_type in FP32_COMPUTE]
    int8 = sum(n for op, n in ops.items() if op in INT8_COMPUTE)
    fp32 = sum(n for op, n in ops.items() if op in FP32_COMPUTE)
    return {
        "int8_compute_ops": int8,
        "fp32_compute_ops": fp32,
        "int8_fraction": round(int8 / max(1, int8 + fp32), 4),
        "fp32_compute_nodes": fp32_nodes,
        "op_counts": dict(sorted(ops.items())),
    }
