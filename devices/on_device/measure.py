"""The measuring library of the on-device check, shared by the host and the board, so both measure alike.

File sizes, peak memory, thread pinning and batch-1 latency, input normalisation and
predictions (what the figures are; `verdicts.py` says what they mean against a budget). The pipeline
imports it to measure on the host; each bundle ships it beside `validate_on_device.py` (the script)
and `runtimes.py`. Keep it free of anything but the standard library, numpy and the runtimes' own
packages: a board has nothing else.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import sys
import time
from pathlib import Path

try:  # the pipeline imports this file as part of the `devices` package
    from devices.on_device import decisions, runtimes
except ImportError:  # on the board: runtimes.py stands beside it in the bundle
    import decisions
    import runtimes


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def peak_memory_mb():
    """Peak resident memory of this process in MB, where the OS tells it (Linux, macOS); else None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except (ImportError, OSError):
        return None


@contextlib.contextmanager
def pinned(threads: int):
    """Pin this process to `threads` CPUs where the OS allows it (Linux), restoring the previous set
    afterwards; yields how many CPUs the process could use before (None where unknown)."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(previous)[: max(1, threads)])
    try:
        yield len(previous)
    finally:
        os.sched_setaffinity(0, previous)


def session(model: Path, threads: int, optimized_copy: Path | None = None):
    """An onnxruntime session as the device runs it: sequential, `threads` intra-op threads, all graph
    optimisations. `optimized_copy`: also write the graph onnxruntime runs after its optimisations
    there (the host reads it to count which compute ops really run in INT8)."""
    return runtimes.OnnxRuntime(Path(model), threads, optimized_copy).session


def with_post_processing(runner, x):
    """What a latency figure times: the model, and for a detector also the post-processing an app
    runs on its output (`decisions.app_post_processing`: decode, score floor, NMS), because that is
    the latency the app pays; a classifier's argmax is left out (a microsecond), so its figures
    are the model's alone."""
    if getattr(runner(x)[0], "ndim", 0) != 3:
        return runner
    return lambda batch: decisions.app_post_processing(runner(batch)[0])


TIMING_SECONDS = 20.0  # how long a timing may take at most (warm-up aside), unless told otherwise
ROUND_SECONDS = 0.05  # each file's turn in a round lasts at least this long, however fast the model
FEWEST_TIMED_RUNS = 20  # a time cap never leaves fewer: the p90 of 20 runs is still one run's figure, not the slowest's


def measure_latency(runner, sample, warmup: int = 20, min_runs: int = 200, max_runs: int = 5000, max_seconds: float = TIMING_SECONDS, tolerance: float = 0.02) -> dict:
    """Batch-1 latency in ms of a runner (`runtimes.open_runner`): warm-up, then batches of runs until
    p90 moves less than `tolerance` between batches, or `max_runs` is reached, or `max_seconds` has
    passed. The time cap holds inside a batch too (after `FEWEST_TIMED_RUNS`): a model of a quarter
    of a second a run, a detector on a small board or under emulation, would otherwise sit through
    200 runs, three times the cap. Spread = (p90 - p10) / p50; `stable` says whether p90 settled."""
    import numpy as np

    x = np.ascontiguousarray(sample[:1], dtype=np.float32)
    runner = with_post_processing(runner, x)
    for _ in range(warmup):
        runner(x)
    times, previous_p90, stable, started = [], None, False, time.perf_counter()
    while not stable and len(times) < max_runs and not out_of_time(times, started, max_seconds):
        for _ in range(min_runs if not times else max(50, min_runs // 2)):
            start = time.perf_counter_ns()
            runner(x)
            times.append((time.perf_counter_ns() - start) / 1e6)
            if out_of_time(times, started, max_seconds):
                break
        p90 = float(np.percentile(times, 90))
        stable = previous_p90 is not None and abs(p90 - previous_p90) <= tolerance * previous_p90
        previous_p90 = p90
    return {**summarize(times), "stable": bool(stable)}


def out_of_time(times: list, started: float, max_seconds: float) -> bool:
    return len(times) >= FEWEST_TIMED_RUNS and time.perf_counter() - started > max_seconds


def interleaved_latencies(files: dict, sample, threads: int, warmup: int = 20, runs: int = 200, rounds: int = 10) -> dict:
    """Batch-1 latency in ms of several model files (name -> path) timed in interleaved rounds, so a
    burst of noise slows them alike instead of deciding which is faster. Per file: `summarize` over
    all its runs, and `rounds_p50`, the median of each round, which `variant_choice` compares round
    by round. Measured on the quickstart's 60-microsecond CNN, each choice below:

    - Each round loads every file afresh (`runtimes.open_runner`, then `warmup` runs). One load of
      a file can run slower than another load of the same file for as long as it lives: two loads
      of one file, kept over 10 rounds, read 0.78 to 1.25 of each other at the median of the rounds,
      and 4 timings of 60 called them different. Loaded afresh each round, 0 of 60 (0.96 to 1.00),
      while the FP32 file against its INT8 twin, 17 % slower, was called different in 60 of 60.
    - The order alternates (A, B, then B, A): on two copies of one file, the one timed first in
      every round read faster in 8 of 10 rounds, by up to 4 %.
    - Each turn is at least `runs / rounds` runs and at least `ROUND_SECONDS`: a 20-run turn of a
      50-microsecond model lasts a millisecond, short enough for one burst of host noise to move
      its median 10 %. On a pruned tiny_cnn whose INT8 file is about 10 % slower, 10 ms turns
      found FP32 faster (8 of 10 rounds, beyond 3 %) in 24 of 30 timings, 50 ms turns in 29.
    Timed one after the other instead of interleaved, a pruned ResNet-20's FP32 file once read
    0.29 ms p50 against 0.18 ms in every other run, which flipped the FP32/INT8 choice."""
    import numpy as np

    x = np.ascontiguousarray(sample[:1], dtype=np.float32)
    order = list(files)
    times = {name: [] for name in files}
    medians = {name: [] for name in files}
    for k in range(rounds):
        runners = {name: with_post_processing(runtimes.open_runner(Path(path), threads=threads), x) for name, path in files.items()}
        for runner in runners.values():
            for _ in range(warmup):
                runner(x)
        for name in order if k % 2 == 0 else order[::-1]:
            turn, started = [], time.perf_counter()
            while len(turn) < max(10, runs // rounds) or time.perf_counter() - started < ROUND_SECONDS:
                start = time.perf_counter_ns()
                runners[name](x)
                turn.append((time.perf_counter_ns() - start) / 1e6)
            times[name] += turn
            medians[name].append(round(float(np.median(turn)), 5))
        del runners  # this round's loads go before the next round's are made
    return {name: {**summarize(t), "rounds_p50": medians[name]} for name, t in times.items()}


def time_probe(files: dict, sample_path: Path, threads: int, warmup: int, runs: int) -> dict:
    """The candidate files of a board's validation (name -> model file), timed interleaved at
    `threads` on one input sample (an .npy file): what `validate` reads from a board instead of
    estimating from the host (run as the script's `--time-probe`)."""
    import numpy as np

    sample = np.load(sample_path)
    with pinned(threads) as cores:
        timed = interleaved_latencies(files, sample, threads, warmup, runs)
    return {name: {**t, "threads": threads, "board_cores": cores or os.cpu_count(), "interleaved": len(files) > 1} for name, t in timed.items()}


def summarize(times) -> dict:
    """p50/p90/p99 and mean in ms, and the spread (p90 - p10) / p50, of a list of timings."""
    import numpy as np

    values = np.array(times)
    p10, p50, p90, p99 = np.percentile(values, [10, 50, 90, 99])
    return {
        "p50": round(float(p50), 5),
        "p90": round(float(p90), 5),
        "p99": round(float(p99), 5),
        "mean": round(float(values.mean()), 5),
        "spread": round(float((p90 - p10) / p50), 4),
        "runs": len(values),
    }


def normalise(pixels, preprocessing: dict):
    """Bundled uint8 pixels [N,C,H,W] to the model's input: (pixel / 255 - mean[c]) / std[c], in
    float32, exactly as the host computed its expected predictions (it calls this function)."""
    import numpy as np

    mean = np.asarray(preprocessing["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(preprocessing["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((pixels.astype(np.float32) / np.float32(255) - mean) / std, dtype=np.float32)


def predictions(runner, inputs, batch: int = 64):
    """What the model decided on each input (`decisions.decisions`: classes, or a detector's padded detections)."""
    import numpy as np

    return np.concatenate([decisions.decisions(runner(inputs[i : i + batch])[0]) for i in range(0, len(inputs), batch)])


def memory_probe(model: Path, threads: int, shape, runs: int = 20) -> dict:
    """Peak memory of a fresh process that loads `model` in its runtime and runs it at batch 1 on an
    input of `shape` (run as a subprocess)."""
    import numpy as np

    runner = runtimes.open_runner(model, threads=threads)
    x = np.zeros(shape, dtype=np.float32)
    for _ in range(runs):
        runner(x)
    return {"peak_memory_mb": peak_memory_mb()}
