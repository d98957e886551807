"""`compress devices calibrate`: turn an on-device run into a measured host-to-device latency factor.

factor = device p50 / host p50 for the same model file at the same thread count. Results of a
bundle of another runtime (ExecuTorch, ncnn, OpenVINO) calibrate that runtime's own factor
(`runtime_factors`), since an Arm-tuned runtime gains differently on the board than on the host. The host figure is
measured here, now, when a run folder holding that file is given (the factor then fits this host,
which is what later runs multiply), else taken from the bundle (the host that made it). The result is
a copy of the profile with `latency_factor_source: calibrated`, written to a user file: a shipped
profile is never overwritten.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import yaml

from devices import PROFILES_DIR
from devices.on_device import bundle_files, measure
from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder, read_json
from pipeline.deploy.gate import is_device_results
from pipeline.deploy.profiles import DeviceProfile, load_profile
from pipeline.runtime.onnx_files import HOST_THREADS, measure_latency


def read_results(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: no such file (copy results.json back from the device)")
    results = read_json(path, "results.json written by validate_on_device.py")
    if not is_device_results(results):
        raise UserError(f"{path}: not results written by validate_on_device.py (format {results.get('format')!r})")
    return results


def model_in_run(run_dir: Path, sha256: str) -> Path:
    """The run's file with this hash; results from any other model are refused."""
    files = RunFolder(run_dir).artifacts()
    for path in files.values():
        if path.is_file() and bundle_files.sha256(path) == sha256:
            return path
    raise UserError(
        f"the results are from a different model (SHA-256 {sha256[:16]}…) than any file of {run_dir} "
        f"({', '.join(f'{n} {bundle_files.sha256(p)[:16]}…' for n, p in files.items() if p.is_file())})"
    )


# what platform.machine() says on each family of the profiles' `cpu` classes
ARCHITECTURES = {"arm": {"aarch64", "arm64", "armv8l", "armv7l", "armv6l"}, "x86": {"x86_64", "amd64", "i686", "i386"}}


def same_architecture(results: dict, profile: DeviceProfile, results_path: Path) -> None:
    """Refuse timings taken on another instruction set than the profile's CPU: x86 results would
    turn every estimate for an Arm board into an x86 figure, and the gate would trust it."""
    machine = str((results.get("platform") or {}).get("machine") or "").lower()
    family = "x86" if profile.cpu == "x86-64" else "arm"
    measured_on = next((name for name, machines in ARCHITECTURES.items() if machine in machines), None)
    if measured_on is None:
        raise UserError(f"{results_path} does not say which kind of CPU measured it (platform.machine {machine!r}); rerun the bundle with the current script")
    if measured_on != family:
        raise UserError(
            f"{results_path} was measured on a {machine} ({measured_on}) machine, but profile {profile.name} is a {profile.cpu} "
            f"({family}) device: calibrating it with these timings would make every estimate for it a figure of another CPU. "
            f"Run the bundle on the {profile.name} itself, or calibrate a profile of the machine that ran it (cpu: "
            f"{'x86-64' if measured_on == 'x86' else 'the Arm core it has'})"
        )


def calibrated_profile(name: str, results_path: Path, run_dir: Path | None = None) -> tuple[DeviceProfile, dict]:
    results = read_results(results_path)
    profile = load_profile(name)
    if results["device"] != profile.name:
        raise UserError(f"{results_path} holds results from device '{results['device']}', not '{profile.name}'")
    same_architecture(results, profile, results_path)
    device_p50 = results["latency_ms"]["p50"]
    threads = results["threads"]
    one_thread = (results.get("latency_one_thread_ms") or {}).get("p50") or (device_p50 if threads == 1 else None)
    if run_dir is not None:
        model = model_in_run(run_dir, results["model_sha256"])
        onnx_file = RunFolder(run_dir).artifacts()["onnx_fp32"]  # every run has it; its input shape is the model's
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in measure.session(onnx_file, 1).get_inputs()[0].shape]
        host_p50 = measure_latency(model, np.zeros(shape, dtype=np.float32), HOST_THREADS)["p50"]
        host_source = f"measured now on one thread of this host ({model.name})"
    else:
        host = (results.get("expected") or {}).get("host_latency_ms") or {}
        if not host.get("p50"):
            raise UserError("the bundle recorded no host latency for this model; give --run RUN_DIR to measure it here")
        host_p50 = host["p50"]
        host_source = "recorded in the bundle by the host that made it"
    runtime = results["platform"].get("runtime", "onnxruntime")
    where = (
        f"model {results['model_sha256'][:16]}…, {results['platform'].get('machine')} {results['platform'].get('system')}, "
        f"{runtime} {results['platform'].get(runtime)}"
    )
    update = {"latency_factor_source": "calibrated", "sources": [*profile.sources, f"on-device results {results_path.name} (model {results['model_sha256'][:16]}…)"]}
    if one_thread is not None:  # the device timed one thread: factor and speed-up are both measured
        update["latency_factor"] = round(one_thread / host_p50, 3)
        update["latency_factor_note"] = (
            f"calibrated {date.today().isoformat()}: device one-thread p50 {one_thread:.4g} ms / host one-thread p50 {host_p50:.4g} ms "
            f"({host_source}), {where}"
        )
        if threads > 1:
            measured = one_thread / device_p50
            update["thread_speedup"] = round(min(max(measured, 1.0), threads), 3)
            update["thread_speedup_source"] = "calibrated"
            update["thread_speedup_note"] = (
                f"calibrated {date.today().isoformat()}: device p50 {one_thread:.4g} ms at 1 thread / {device_p50:.4g} ms at {threads} "
                f"threads = {measured:.3g}x" + (" (no gain from threads: consider threads: 1 for this model)" if measured < 1 else "") + f", {where}"
            )
    else:  # results of an older script: one figure at the device's threads; the nominal speed-up stays
        update["latency_factor"] = round(device_p50 * profile.thread_speedup / host_p50, 3)
        update["latency_factor_note"] = (
            f"calibrated {date.today().isoformat()}: device p50 {device_p50:.4g} ms at {threads} threads x nominal speed-up "
            f"{profile.thread_speedup} / host one-thread p50 {host_p50:.4g} ms ({host_source}), {where}"
        )
    if runtime != "onnxruntime":  # the factor is that runtime's own; the profile's stays for the others
        factor, note = update.pop("latency_factor"), update.pop("latency_factor_note")
        update["latency_factor_source"] = profile.latency_factor_source
        update["runtime_factors"] = {**profile.runtime_factors, runtime: factor}
        update["runtime_factors_note"] = (profile.runtime_factors_note + " " if profile.runtime_factors_note else "") + f"{runtime}: {note}"
    calibrated = profile.model_copy(update=update)
    return DeviceProfile.model_validate(calibrated.model_dump()), {"device_p50_ms": device_p50, "host_p50_ms": host_p50, "previous_factor": profile.latency_factor}


def write_profile(profile: DeviceProfile, out: Path, force: bool = False) -> Path:
    out = out.expanduser()
    if PROFILES_DIR.resolve() in out.resolve().parents:
        raise UserError(f"refusing to write {out}: it is inside the shipped profiles folder; write a user copy elsewhere")
    if out.exists() and not force:
        raise UserError(f"{out} exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(profile.model_dump(exclude_none=True), sort_keys=False))
    return out
