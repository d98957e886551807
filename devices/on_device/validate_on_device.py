#!/usr/bin/env python3
"""Validate an edge-compress bundle on the device itself. Needs Python 3.8+, numpy and the model's runtime only.

    python3 validate_on_device.py bundle.zip            # or the unpacked bundle folder
    python3 validate_on_device.py bundle.zip --out results.json --threads 4

It checks the model file against the SHA-256 in the bundle's manifest, measures accuracy on the bundled
test samples and batch-1 latency (p50/p90/p99, with warm-up and as many runs as a stable p90 needs)
with the device profile's thread count, reads the process's peak memory from the OS, judges the
device's budgets, writes results.json and prints a verdict. Exit codes, as `compress gate`: 0 every
budget met, 1 a budget broken, 2 cannot judge (a bad bundle, a wrong hash, a figure not measured).
Copy results.json back and run `compress gate results.json`, or `compress devices calibrate`.

The edge-compress pipeline imports this file too (latency, peak memory and budget rules), so the host
measures the way the device does; keep it free of anything but the standard library, numpy and
the runtimes' own packages (`runtimes.py`, shipped beside it, opens a file in its runtime: onnxruntime,
ncnn, openvino or executorch).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

try:  # the pipeline imports this file as part of the `devices` package
    from devices.on_device import runtimes
except ImportError:  # on the device it runs as a script, with runtimes.py beside it in the bundle
    try:
        import runtimes
    except ImportError:  # the script was copied out beside the zip: runtimes.py is read from the bundle once unpacked
        runtimes = None

BUNDLE_FORMAT = "edge-compress-bundle/1"
RESULTS_FORMAT = "edge-compress-device-results/1"
PASS, FAIL, CANNOT_JUDGE = 0, 1, 2

# budget name -> (figure it reads, True when the value must stay at or below the limit)
RULES = {
    "max_size_kb": ("size_kb", True),
    "max_size_gzip_kb": ("size_gzip_kb", True),
    "max_latency_p90_ms": ("latency_p90_ms", True),
    "min_accuracy": ("accuracy", False),
    "max_accuracy_drop": ("accuracy_drop", True),
    "max_peak_memory_mb": ("peak_memory_mb", True),
}


class BundleError(Exception):
    """The bundle cannot be trusted or read: a path outside its folder, a wrong hash, a missing file."""


def judge(budgets: dict, figures: dict) -> dict:
    """One row per budget: value, limit, passed (None when the figure was not measured)."""
    rows = {}
    for name, limit in budgets.items():
        if limit is None:
            continue
        figure, at_most = RULES[name]
        value = figures.get(figure)
        passed = None if value is None else (value <= limit if at_most else value >= limit)
        rows[name] = {"value": None if value is None else round(float(value), 6), "limit": limit, "passed": passed}
    return rows


def overall(rows: dict):
    """False if any budget fails, None if any cannot be judged (or there are none), else True."""
    verdicts = [r["passed"] for r in rows.values()]
    if any(v is False for v in verdicts):
        return False
    if not verdicts or any(v is None for v in verdicts):
        return None
    return True


def exit_code(passed) -> int:
    return {True: PASS, False: FAIL, None: CANNOT_JUDGE}[passed]


def inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing any path that resolves outside `folder` (absolute, `..`, links)."""
    root = folder.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise BundleError(f"refusing path {relative!r}: it points outside the bundle folder {root}")
    return target


def unpack(bundle: Path, into: Path) -> Path:
    """Extract a zip bundle member by member, refusing any member whose path escapes `into`."""
    with zipfile.ZipFile(bundle) as archive:
        for member in archive.infolist():
            target = inside(into, member.filename)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                sink.write(source.read())
    return into


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def measure_latency(runner, sample, warmup: int = 20, min_runs: int = 200, max_runs: int = 5000, max_seconds: float = 20.0, tolerance: float = 0.02) -> dict:
    """Batch-1 latency in ms of a runner (`runtimes.open_runner`): warm-up, then batches of runs until
    p90 moves less than `tolerance` between batches (or `max_runs` / `max_seconds` is reached).
    Spread = (p90 - p10) / p50."""
    import numpy as np

    x = np.ascontiguousarray(sample[:1], dtype=np.float32)
    for _ in range(warmup):
        runner(x)
    times, previous_p90, started = [], None, time.perf_counter()
    while True:
        for _ in range(min_runs if not times else max(50, min_runs // 2)):
            start = time.perf_counter_ns()
            runner(x)
            times.append((time.perf_counter_ns() - start) / 1e6)
        p90 = float(np.percentile(times, 90))
        stable = previous_p90 is not None and abs(p90 - previous_p90) <= tolerance * previous_p90
        if stable or len(times) >= max_runs or time.perf_counter() - started > max_seconds:
            break
        previous_p90 = p90
    return {**summarize(times), "stable": bool(stable)}


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


def load_inputs(folder: Path, manifest: dict):
    """The bundle's samples as model inputs: raw pixels normalised here with the manifest's
    preprocessing (bundles of image data), or float inputs stored as they are fed."""
    import numpy as np

    samples = manifest["samples"]
    if "pixels" in samples:
        return normalise(np.load(inside(folder, samples["pixels"])), manifest["preprocessing"])
    return np.load(inside(folder, samples["inputs"]))


def predictions(runner, inputs, batch: int = 64):
    import numpy as np

    return np.concatenate([runner(inputs[i : i + batch])[0].argmax(1) for i in range(0, len(inputs), batch)])


def memory_probe(model: Path, threads: int, shape, runs: int = 20) -> dict:
    """Peak memory of a fresh process that loads `model` in its runtime and runs it at batch 1 on an
    input of `shape` (run as a subprocess)."""
    import numpy as np

    runner = runtimes.open_runner(model, threads=threads)
    x = np.zeros(shape, dtype=np.float32)
    for _ in range(runs):
        runner(x)
    return {"peak_memory_mb": peak_memory_mb()}


def load_bundle(path: Path, workdir: Path):
    """The bundle folder and its manifest; a zip is unpacked safely into `workdir` first."""
    folder = unpack(path, workdir) if path.is_file() else path
    manifest_path = inside(folder, "manifest.json")
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no manifest.json; is this a bundle made by `compress bundle`?")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: manifest format {manifest.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    bundled_runtimes(folder)
    return folder, manifest


def bundled_runtimes(folder: Path):
    """`runtimes`, read from the unpacked bundle where the script was copied out of it alone."""
    global runtimes
    if runtimes is None:
        source = inside(folder, "runtimes.py")
        if not source.is_file():
            raise BundleError(f"{folder}: no runtimes.py; unpack the whole bundle, or pass the bundle's zip")
        spec = importlib.util.spec_from_file_location("runtimes", source)
        module = importlib.util.module_from_spec(spec)
        sys.modules["runtimes"] = module
        spec.loader.exec_module(module)
        runtimes = module
    return runtimes


def validate(bundle: Path, threads=None, out=None) -> dict:
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        folder, manifest = load_bundle(bundle, Path(tmp))
        model = inside(folder, manifest["model"]["path"])
        digest = sha256(model)
        for name, expected_digest in {**manifest["model"].get("files", {}), manifest["model"]["path"]: manifest["model"]["sha256"]}.items():
            actual = sha256(inside(folder, name))
            if actual != expected_digest:
                raise BundleError(f"{name}: SHA-256 {actual} does not match the manifest's {expected_digest}; the bundle was altered or corrupted")
        inputs = load_inputs(folder, manifest)
        labels = np.load(inside(folder, manifest["samples"]["labels"]))
        expected = np.load(inside(folder, manifest["samples"]["expected_predictions"]))
        device = manifest["device"]
        threads = threads or device["threads"]
        runtime = manifest["model"].get("runtime", "onnxruntime")
        with pinned(threads):
            runner = runtimes.open_runner(model, runtime, threads)
            predicted = predictions(runner, inputs)
            latency = measure_latency(runner, inputs)
        version = runner.version
        del runner  # ExecuTorch has one thread pool per process: no program may outlive a change of its size
        one_thread = None
        if threads > 1:  # the host estimates from one thread; this pair calibrates the thread speed-up
            with pinned(1):
                one_thread = measure_latency(runtimes.open_runner(model, runtime, 1), inputs)
        accuracy = float((predicted == labels).mean())
        files = runtimes.model_files(model)
        size, size_gzip = sum(f.stat().st_size for f in files), sum(gzip_size(f) for f in files)
        reference = manifest["expected"].get("reference_accuracy")
        figures = {
            "size_kb": size / 1024,
            "size_gzip_kb": size_gzip / 1024,
            "latency_p90_ms": latency["p90"],
            "accuracy": accuracy,
            "accuracy_drop": None if reference is None else (reference - accuracy) * 100,
            "peak_memory_mb": peak_memory_mb(),
        }
        budgets = judge(manifest["budgets"], figures)
        results = {
            "format": RESULTS_FORMAT,
            "device": device["name"],
            "model_sha256": digest,
            "artifact": manifest["model"]["artifact"],
            "run": manifest.get("run", {}),
            "samples": int(len(labels)),
            "accuracy": round(accuracy, 5),
            "agreement_with_host": round(float((predicted == expected).mean()), 5),
            "expected": manifest["expected"],
            "latency_ms": latency,
            "latency_one_thread_ms": one_thread,
            "threads": threads,
            "size_bytes": size,
            "size_gzip_bytes": size_gzip,
            "peak_memory_mb": None if figures["peak_memory_mb"] is None else round(figures["peak_memory_mb"], 2),
            "budgets": budgets,
            "passed": overall(budgets),
            "platform": {
                "machine": platform.machine(),
                "system": platform.system(),
                "release": platform.release(),
                "python": platform.python_version(),
                "runtime": runtime,
                runtime: version,
                "numpy": np.__version__,
                "cpu_count": os.cpu_count(),
            },
        }
    if out is not None:
        Path(out).write_text(json.dumps(results, indent=2) + "\n")
    return results


def print_verdict(results: dict) -> None:
    print(f"device {results['device']}: {results['artifact']} ({results['model_sha256'][:12]}), {results['threads']} thread(s)")
    print(f"  accuracy {results['accuracy']:.4f} on {results['samples']} samples (host expected {results['expected']['sample_accuracy']:.4f}); agreement with host {results['agreement_with_host']:.4f}")
    lat = results["latency_ms"]
    print(f"  latency p50 {lat['p50']:.4f} ms, p90 {lat['p90']:.4f} ms, p99 {lat['p99']:.4f} ms over {lat['runs']} runs (spread {lat['spread']:.2%})")
    print(f"  peak memory {results['peak_memory_mb']} MB, size {results['size_bytes'] / 1024:.1f} KiB ({results['size_gzip_bytes'] / 1024:.1f} KiB gzipped)")
    for name, row in results["budgets"].items():
        verdict = {True: "pass", False: "FAIL", None: "unknown"}[row["passed"]]
        print(f"  {name:<20} {row['value']!s:>12} {row['limit']!s:>10}  {verdict}")
    if results["agreement_with_host"] < 0.97:
        print("  warning: predictions differ from the host's on more than 3 % of samples: the runtime computes differently here")
    print({True: "verdict: PASS", False: "verdict: FAIL", None: "verdict: CANNOT JUDGE"}[results["passed"]])


def own_folder() -> Path:
    """The unpacked bundle this script was shipped in (it sits beside manifest.json), else the
    current folder, so `python3 validate_on_device.py` inside the bundle judges that bundle."""
    here = Path(__file__).resolve().parent
    return here if (here / "manifest.json").is_file() else Path.cwd()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "bundle", type=Path, nargs="?", default=None,
        help="bundle .zip made by `compress bundle`, or its unpacked folder; default: the unpacked bundle this script stands in",
    )
    parser.add_argument("--out", type=Path, default=Path("results.json"))
    parser.add_argument("--threads", type=int, default=None, help="default: the device profile's")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)  # BUNDLE is a model file here
    parser.add_argument("--shape", default="", help=argparse.SUPPRESS)  # the probe's input shape, e.g. 1,1,28,28
    args = parser.parse_args(argv)
    if args.bundle is None:
        args.bundle = own_folder()
    if args.memory_probe:
        print(json.dumps(memory_probe(args.bundle, args.threads or 1, [int(d) for d in args.shape.split(",")])))
        return PASS
    try:
        results = validate(args.bundle, args.threads, args.out)
    except Exception as e:  # noqa: BLE001  what the bundle or its runtime can say: one line, exit 2
        if not isinstance(e, (BundleError, OSError, KeyError, ValueError, zipfile.BadZipFile)) and type(e).__name__ != "RuntimeMissing":
            raise
        print(f"error: {e}", file=sys.stderr)
        return CANNOT_JUDGE
    print_verdict(results)
    print(f"results: {args.out}")
    return exit_code(results["passed"])


if __name__ == "__main__":
    sys.exit(main())
