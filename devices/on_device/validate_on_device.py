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

The measuring lives in `measure.py`, the budget rules and verdicts in `verdicts.py`, the safe reading
of the bundle (paths, manifest, hashes) in `bundle_files.py` and the runtimes in `runtimes.py`, all
shipped beside this script; the pipeline imports the same files, so the host measures and judges the
way the device does. This script only runs the check and prints the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import zipfile
from pathlib import Path

try:  # run from the repository, or by the pipeline's tests
    from devices.on_device import bundle_files, decisions, measure, runtimes, verdicts
except ImportError:
    try:  # on the device, inside the unpacked bundle: the shipped modules stand beside this script
        import bundle_files
        import decisions
        import measure
        import runtimes
        import verdicts
    except ImportError:  # the script was copied out on its own: `shipped_modules` imports them from the bundle
        bundle_files = decisions = measure = runtimes = verdicts = None

SHIPPED_BESIDE = ("runtimes", "verdicts", "measure", "bundle_files", "decisions", "detections", "coco_eval")  # the modules each bundle carries next to this script


def shipped_modules(bundle: Path) -> None:
    """Where the script was copied out of its bundle alone, import the modules the bundle carries from
    the bundle itself: a zip is importable as it stands (zipimport), an unpacked folder by its path."""
    global bundle_files, decisions, measure, runtimes, verdicts
    if measure is not None:
        return
    sys.path.insert(0, str(bundle))
    try:
        import bundle_files
        import decisions
        import measure
        import runtimes
        import verdicts
    except ImportError as e:
        raise ImportError(f"{bundle}: no {e.name}.py beside this script or in the bundle; unpack the whole bundle, or pass the bundle's zip") from None


def load_inputs(folder: Path, manifest: dict):
    """The bundle's samples as model inputs: raw pixels normalised here with the manifest's
    preprocessing (bundles of image data), or float inputs stored as they are fed."""
    import numpy as np

    samples = manifest["samples"]
    if "pixels" in samples:
        return measure.normalise(np.load(bundle_files.inside(folder, samples["pixels"])), manifest["preprocessing"])
    return np.load(bundle_files.inside(folder, samples["inputs"]))


def load_bundle(path: Path, workdir: Path):
    """The bundle folder and its manifest; a zip is unpacked safely into `workdir` first."""
    folder = bundle_files.unpack(path, workdir) if path.is_file() else path
    return folder, bundle_files.read_manifest(path, folder, verdicts.BUNDLE_FORMAT)


def validate(bundle: Path, threads=None, out=None, max_seconds: float | None = None) -> dict:
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        folder, manifest = load_bundle(bundle, Path(tmp))
        model = bundle_files.checked_model(folder, manifest["model"])
        digest = manifest["model"]["sha256"]
        inputs = load_inputs(folder, manifest)
        labels = np.load(bundle_files.inside(folder, manifest["samples"]["labels"]))
        expected = np.load(bundle_files.inside(folder, manifest["samples"]["expected_predictions"]))
        device = manifest["device"]
        threads = threads or device["threads"]
        max_seconds = max_seconds or measure.TIMING_SECONDS
        runtime = manifest["model"].get("runtime", "onnxruntime")
        with measure.pinned(threads):
            runner = runtimes.open_runner(model, runtime, threads)
            predicted = measure.predictions(runner, inputs)
            latency = measure.measure_latency(runner, inputs, max_seconds=max_seconds)
        version = runner.version
        del runner  # ExecuTorch has one thread pool per process: no program may outlive a change of its size
        one_thread = None
        if threads > 1:  # the host estimates from one thread; this pair calibrates the thread speed-up
            with measure.pinned(1):
                one_thread = measure.measure_latency(runtimes.open_runner(model, runtime, 1), inputs, max_seconds=max_seconds)
        accuracy = decisions.score(predicted, labels)  # top-1, or a detector's COCO mAP (None without pycocotools)
        files = runtimes.model_files(model)
        size, size_gzip = sum(f.stat().st_size for f in files), sum(measure.gzip_size(f) for f in files)
        reference = manifest["expected"].get("reference_accuracy")
        figures = {
            "size_kb": size / 1024,
            "size_gzip_kb": size_gzip / 1024,
            "latency_p90_ms": latency["p90"],
            "accuracy": accuracy,
            "accuracy_drop": None if reference is None or accuracy is None else (reference - accuracy) * 100,
            "peak_memory_mb": measure.peak_memory_mb(),
        }
        budgets = verdicts.judge(manifest["budgets"], figures)
        results = {
            "format": verdicts.RESULTS_FORMAT,
            "device": device["name"],
            "model_sha256": digest,
            "artifact": manifest["model"]["artifact"],
            "run": manifest.get("run", {}),
            "samples": int(len(labels)),
            "accuracy": None if accuracy is None else round(accuracy, 5),
            "agreement_with_host": round(decisions.agreement(predicted, expected), 5),
            "expected": manifest["expected"],
            "latency_ms": latency,
            "latency_one_thread_ms": one_thread,
            "threads": threads,
            "size_bytes": size,
            "size_gzip_bytes": size_gzip,
            "peak_memory_mb": None if figures["peak_memory_mb"] is None else round(figures["peak_memory_mb"], 2),
            "budgets": budgets,
            "passed": verdicts.overall(budgets),
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
    accuracy = "not measured (a detector's mAP needs pycocotools here: pip install pycocotools)" if results["accuracy"] is None else f"{results['accuracy']:.4f}"
    print(f"  accuracy {accuracy} on {results['samples']} samples (host expected {results['expected']['sample_accuracy']:.4f}); agreement with host {results['agreement_with_host']:.4f}")
    lat = results["latency_ms"]
    print(f"  latency p50 {lat['p50']:.4f} ms, p90 {lat['p90']:.4f} ms, p99 {lat['p99']:.4f} ms over {lat['runs']} runs (spread {lat['spread']:.2%})")
    print(f"  peak memory {results['peak_memory_mb']} MB, size {results['size_bytes'] / 1024:.1f} KiB ({results['size_gzip_bytes'] / 1024:.1f} KiB gzipped)")
    for name, row in results["budgets"].items():
        verdict = verdicts.VERDICT[row["passed"]]
        print(f"  {name:<20} {row['value']!s:>12} {row['limit']!s:>10}  {verdict}")
    if results["agreement_with_host"] < 0.97:
        print("  warning: predictions differ from the host's on more than 3 % of samples: the runtime computes differently here")
    print(f"verdict: {verdicts.VERDICT[results['passed']]}")


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
    parser.add_argument("--max-seconds", type=float, default=None, help="the longest the timing takes at each thread count, warm-up aside (default and floor: measure.py's TIMING_SECONDS and FEWEST_TIMED_RUNS)")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)  # BUNDLE is a model file here
    parser.add_argument("--shape", default="", help=argparse.SUPPRESS)  # the probe's input shape, e.g. 1,1,28,28
    parser.add_argument("--time-probe", default="", help=argparse.SUPPRESS)  # name=model,name=model: time these files (BUNDLE: the folder they are in)
    parser.add_argument("--sample", default="", help=argparse.SUPPRESS)  # the time probe's input, an .npy file
    parser.add_argument("--runs", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bundle is None:
        args.bundle = own_folder()
    try:
        shipped_modules(args.bundle)
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2  # cannot judge (verdicts.CANNOT_JUDGE, which is among what could not be imported)
    if args.memory_probe:
        print(json.dumps(measure.memory_probe(args.bundle, args.threads or 1, [int(d) for d in args.shape.split(",")])))
        return verdicts.PASS
    if args.time_probe:
        files = dict(pair.split("=", 1) for pair in args.time_probe.split(","))
        files = {name: bundle_files.inside(args.bundle, path) for name, path in files.items()}
        print(json.dumps(measure.time_probe(files, bundle_files.inside(args.bundle, args.sample), args.threads or 1, args.warmup, args.runs)))
        return verdicts.PASS
    try:
        results = validate(args.bundle, args.threads, args.out, args.max_seconds)
    except Exception as e:  # noqa: BLE001  what the bundle or its runtime can say: one line, exit 2
        if not isinstance(e, (bundle_files.BundleError, OSError, KeyError, ValueError, zipfile.BadZipFile)) and type(e).__name__ != "RuntimeMissing":
            raise
        print(f"error: {e}", file=sys.stderr)
        return verdicts.CANNOT_JUDGE
    print_verdict(results)
    print(f"results: {args.out}")
    return verdicts.exit_code(results["passed"])


if __name__ == "__main__":
    sys.exit(main())
