"""`compress bundle`: what a device needs to prove a run's model on itself, in one small zip.

The bundle holds the model file the run chose for that device (its SHA-256 in the manifest), a
sample of test inputs with labels and the host's predictions, the expected accuracy and latency, the
device's budgets and the torch-free script `validate_on_device.py`. The sample is capped so the
bundle stays small (`MAX_SAMPLE_BYTES`). By default the file is the one `validate` chose for the
device; `artifact` packs any deployable file the run made (any runtime, precision or width), e.g.
for a board the run did not judge. A device the run never judged is refused without `artifact`:
its bundle would carry neither a chosen file nor expected figures. The zip is written beside its
final name and renamed, so a failed bundle leaves nothing that looks finished.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from devices.on_device import bundle_files, decisions, measure, runtimes, verdicts
from devices.on_device import validate_on_device as script
from pipeline.core.errors import UserError
from pipeline.core.output_paths import writable_file
from pipeline.core.run_folder import RunFolder
from pipeline.core.state import deployable
from pipeline.data import DataConfig, load_data
from pipeline.deploy.profiles import load_profile

MAX_SAMPLE_BYTES = 2 * 1024 * 1024  # inputs as float32; keeps a bundle of a small model under ~3 MB
MAX_SAMPLES = 1000
log = logging.getLogger("compress")
README = """edge-compress bundle for {device}

On the device (Python 3.8+, numpy and {package}{torch}; no project install):

    python3 validate_on_device.py {name}

or, once unzipped, from inside the unpacked folder: python3 validate_on_device.py

It verifies the model's SHA-256, measures accuracy on {count} test samples and batch-1 latency with
{threads} thread(s), reads peak memory, judges the budgets in manifest.json and writes results.json.
Copy results.json back and run `compress gate results.json` (same exit codes as for a run folder)
or `compress devices calibrate {device} results.json` to turn the timing into a calibrated profile.
"""


def torch_note(runtime: str) -> str:
    """The README's word on torch: none, or why this runtime's Python runtime pulls it."""
    note = runtimes.RUNNERS[runtime].torch_note
    return f" ({note})" if note else "; no torch"


def make_bundle(run_dir: Path, device: str, out: Path, artifact: str | None = None, samples: int | None = None) -> dict:
    """Write the bundle zip for `device` (a profile name or path) from a finished run; returns the manifest."""
    writable_file(out, "-o", "bundle", example="bundle.zip")  # before any work
    run = RunFolder(run_dir)
    report = run.report()
    profile = load_profile(device)
    judged = report.get("devices") or {}
    entry = judged.get(profile.name)
    artifacts = deployable(run.artifacts())
    if entry is None and artifact is None:
        raise UserError(
            f"bundle: the run at {run_dir} never judged device {profile.name} (its validate judged: {', '.join(judged) or 'no device'}), "
            f"so there is no file chosen for it and no expected figures to compare with; add {profile.name} to the recipe's devices "
            f"and run it again (only validate re-runs), or pass --artifact with one of: {', '.join(artifacts) or 'none'}"
        )
    if entry is None:
        log.warning(f"bundle: the run never judged {profile.name}: the bundle carries {artifact} without expected latency or accuracy figures")
    chosen = artifact or entry["artifact"]
    if chosen not in artifacts:
        raise UserError(f"bundle: --artifact {chosen}: the run at {run_dir} has no such file; it has: {', '.join(artifacts) or 'none; did export run?'}")
    model = artifacts[chosen]
    header = run.recipe_header()
    if not header.get("data"):
        raise UserError(f"{run_dir} was measured without data, so there are no test samples to bundle: run `compress validate MODEL --data SOURCE[:PATH]`")
    data = load_data(DataConfig.model_validate(header["data"]), header["seed"])
    test = data.test
    per_sample = int(np.prod(test.sample_shape)) * 4
    count = min(len(test), samples or min(MAX_SAMPLES, MAX_SAMPLE_BYTES // per_sample))
    x, y = test.take(count)
    stored = as_pixels(x.numpy(), data.mean, data.std)
    inputs = measure.normalise(stored[1], stored[0]) if stored else np.ascontiguousarray(x.numpy(), dtype=np.float32)
    labels = y.numpy() if y.is_floating_point() else y.numpy().astype(np.int64)  # float: a detector's box targets [N, M, 5]
    runtime = runtimes.runtime_of(model)
    predicted = measure.predictions(runtimes.open_runner(model, runtime), inputs)
    model_path = f"model/{model.name}"
    files = {f"model/{f.name}": f for f in runtimes.model_files(model)}  # ncnn and OpenVINO keep the weights in a .bin beside the graph
    same = entry is not None and entry["artifact"] == chosen
    manifest = {
        "format": verdicts.BUNDLE_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": {"recipe": report["recipe"]["name"], "recipe_sha256": report["recipe"]["sha256"]},
        "model": {
            "path": model_path, "artifact": chosen, "runtime": runtime, "sha256": bundle_files.sha256(model), "size_bytes": sum(f.stat().st_size for f in files.values()),
            "files": {name: bundle_files.sha256(f) for name, f in files.items()},
        },
        "device": profile.model_dump(),
        "budgets": profile.budgets.for_task(header.get("task", "classification")),
        "samples": {
            **({"pixels": "samples/pixels.npy"} if stored else {"inputs": "samples/inputs.npy"}),
            "labels": "samples/labels.npy",
            "expected_predictions": "samples/expected_predictions.npy",
            "count": count,
        },
        **({"preprocessing": stored[0]} if stored else {}),
        "expected": {
            "sample_accuracy": round(decisions.score(predicted, labels), 5),
            "test_accuracy": entry["accuracy"] if same else None,
            "reference_accuracy": (report.get("reference") or {}).get("accuracy"),
            "host_latency_ms": entry["host_latency_ms"] if same else None,  # measured on the host, at the device's threads
            "estimated_latency_ms": entry["latency_ms"] if same else None,
            "threads": profile.threads,
        },
    }
    partial = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
            for name, f in files.items():
                archive.write(f, name)
            for key, array in ((("pixels", stored[1]) if stored else ("inputs", inputs)), ("labels", labels), ("expected_predictions", predicted)):
                buffer = io.BytesIO()
                np.save(buffer, array)
                archive.writestr(manifest["samples"][key], buffer.getvalue())
            for path in script_files():
                archive.write(path, path.name)
            archive.writestr("README.txt", README.format(device=profile.name, name=out.name, count=count, threads=profile.threads, package=runtimes.RUNNERS[runtime].package, torch=torch_note(runtime)))
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def script_files() -> list[Path]:
    """The torch-free script and the modules it imports from beside it: what a board runs."""
    return [Path(m.__file__) for m in (script, *(importlib.import_module(f"devices.on_device.{name}") for name in script.SHIPPED_BESIDE))]


def as_pixels(x: np.ndarray, mean: list[float], std: list[float]) -> tuple[dict, np.ndarray] | None:
    """Normalised images back to the uint8 pixels they came from, with the preprocessing that turns
    them into model inputs, when that is exact (image data); None for inputs that were never pixels
    (a user's float Dataset), which the bundle then stores as float inputs."""
    m, s = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1), np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    scaled = (x * s + m) * 255
    pixels = np.rint(scaled)
    if pixels.min() < 0 or pixels.max() > 255 or np.abs(scaled - pixels).max() > 1e-2:
        return None
    return {"scale": 1 / 255, "mean": list(mean), "std": list(std), "formula": "(pixel / 255 - mean[c]) / std[c]"}, pixels.astype(np.uint8)
