"""What a runtime says about an exported file: accuracy and latency percentiles (in the file's own runtime), and which compute runs in INT8 (onnxruntime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from devices.on_device import measure, runtimes
from pipeline.core.metrics import Metric, top1
from pipeline.data import Split

HOST_THREADS = 1  # every host timing of a model is single-threaded: a 2-core host and a 64-core one estimate alike
NOISY_SPREAD, NOISY_RETRIES = 0.25, 2  # (p90 - p10) / p50 above this: the host was busy during the timing


def onnx_accuracy(path: Path, split: Split, batch_size: int = 256, metric: Metric = top1) -> float:
    """The metric (top-1 accuracy unless given) of an ONNX file's logits on a split."""
    outputs, labels = split_outputs(path, split, batch_size, first_only=True)
    return metric(outputs[0], labels)


def file_accuracy(path: Path, split: Split, metric: Metric = top1, batch_size: int = 256) -> float:
    """The metric of a model file of any runtime (`runtimes.runtime_of`), run in that runtime."""
    if runtimes.runtime_of(path) == "onnxruntime":
        return onnx_accuracy(path, split, batch_size, metric)
    runner = runtimes.open_runner(path, threads=HOST_THREADS)  # ExecuTorch's one pool per process: every host runner the same size
    logits, labels = [], []
    for x, y, _ in split.batches(batch_size):
        logits.append(runner(np.ascontiguousarray(x.numpy(), dtype=np.float32))[0])
        labels.append(y.numpy())
    return metric(np.concatenate(logits), np.concatenate(labels))


def split_outputs(path: Path, split: Split, batch_size: int = 256, first_only: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """The file's outputs (all, or the logits alone) over a whole split read in batches, and the
    labels. A file exported with its batch fixed at 1 (`torch.onnx.export` without `dynamic_axes`,
    the most common export there is) is fed one sample at a time."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    if sess.get_inputs()[0].shape[0] == 1:
        batch_size = 1
    wanted = [sess.get_outputs()[0].name] if first_only else None
    parts, labels = [], []
    for x, y, _ in split.batches(batch_size):
        parts.append(sess.run(wanted, {name: np.ascontiguousarray(x.numpy(), dtype=np.float32)}))
        labels.append(y.numpy())
    return [np.concatenate(p) for p in zip(*parts)], np.concatenate(labels)


def measure_latency(path: Path, sample: np.ndarray, threads: int, warmup: int = 20, runs: int = 200) -> dict[str, float]:
    """Batch-1 latency in ms the way the on-device script measures it (same code): the process pinned
    to `threads` CPUs where possible, warm-up, then at least `runs` runs and more until p90 is stable.

    A host with fewer cores than `threads` cannot run them in parallel; `host_cores` says so.
    """
    with measure.pinned(threads) as cores:
        sess = runtimes.open_runner(path, threads=threads)
        figures = measure.measure_latency(sess, sample, warmup=warmup, min_runs=runs)
        for retry in range(1, NOISY_RETRIES + 1):  # a burst of host noise inflates p90; measure again, keep the calmest
            if figures["spread"] <= NOISY_SPREAD:
                break
            again = measure.measure_latency(sess, sample, warmup=warmup, min_runs=runs)
            figures = min(figures, {**again, "retries": retry}, key=lambda f: f["spread"])
    return {**figures, "threads": threads, "host_cores": cores or os.cpu_count()}


def measure_latencies(paths: dict[str, Path], sample: np.ndarray, threads: int, warmup: int = 20, runs: int = 200, rounds: int = 10) -> dict[str, dict]:
    """Several files timed in interleaved rounds on this host (`measure.interleaved_latencies`, the
    same timing a board's validation runs), with the same settings as `measure_latency`."""
    with measure.pinned(threads) as cores:
        timed = measure.interleaved_latencies(paths, sample, threads, warmup, runs, rounds)
    return {name: {**t, "threads": threads, "host_cores": cores or os.cpu_count(), "interleaved": len(paths) > 1} for name, t in timed.items()}


def peak_memory_mb(path: Path, threads: int, shape: tuple[int, ...]) -> float | None:
    """Peak resident memory of a fresh Python process that loads the model in its runtime and runs
    it at batch 1 (input `shape`), measured by the on-device script's probe, so host and device
    figures mean the same thing."""
    probe = subprocess.run(
        [sys.executable, str(Path(measure.__file__).with_name("validate_on_device.py")), str(path), "--memory-probe", "--threads", str(threads), "--shape", ",".join(map(str, shape))],
        capture_output=True, text=True, timeout=120,
    )
    if probe.returncode != 0:
        return None
    return json.loads(probe.stdout.strip().splitlines()[-1])["peak_memory_mb"]


def optimized_nodes(path: Path) -> list[tuple[str, str]]:
    """(op type, name) of each node in the graph onnxruntime actually runs, after its optimisations.

    A QDQ file always looks quantized; only the optimised graph shows whether each conv became a
    QLinearConv or stayed in float between Q/DQ pairs (`quantization/int8_checks.py` counts them).
    """
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        measure.session(path, threads=1, optimized_copy=optimized)
        return [(node.op_type, node.name or node.output[0]) for node in onnx.load(str(optimized)).graph.node]
