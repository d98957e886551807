"""Every device runtime side by side on the zoo models: parity, size, and batch-1 latency at one
thread in each runtime, FP32 and INT8, with the per-device choice.

For each model, one pipeline run on the embedded Fashion-MNIST subset (train briefly, so weights and
activations are those of a trained net, not of an initialisation): export to every runtime
(`runtimes: auto`, the host profile admits all four), quantize (ONNX Runtime static INT8, and the
INT8 twins of ExecuTorch and OpenVINO), validate on the shipped profiles. All files of a model are
timed by `validate` in interleaved rounds on one thread, so host noise slows them alike; each file's
p50 is also given as a ratio to the same model's ONNX Runtime FP32 file. Accuracy is on the embedded
1 000-sample test split, measured in each file's own runtime; nothing is chosen on it.

    python benchmarks/runtimes.py [--models tiny_cnn resnet20 mobilenetv2] [--epochs 2] [--out /tmp/compress-runtimes]
    python benchmarks/runtimes.py --models --recipes recipes/fashion-mnist.yaml ...   # a shipped recipe's final model

`--recipes` runs a shipped recipe as it is, except that its export builds every runtime the devices
above admit and validate judges those devices, so the rows are the recipe's own final model (on the
recipe's own data and test split).

Run it alone on the machine: two cores are easily oversubscribed, and latency is what it measures.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml


import runs  # benchmarks/runs.py, beside this script

DEVICES = ["host", "raspberry-pi-4", "cortex-a76-phone", "intel-n100"]


def recipe(model: str, epochs: int) -> dict:
    return {
        "name": f"runtimes-{model}", "seed": 0, "data": {"source": "embedded"}, "model": {"name": model},
        "stages": [
            {"train": {"epochs": epochs, "lr": 0.01}},
            {"export": {"runtimes": "auto"}},
            {"quantize": {"calibration_samples": 512}},
            {"validate": {"runs": 400}},
        ],
        "devices": DEVICES,
    }


def through_every_runtime(path: Path) -> dict:
    """A shipped recipe, its export building every runtime the benchmark's devices admit."""
    shipped = yaml.safe_load(path.read_text())
    for entry in shipped["stages"]:
        if "export" in entry:
            entry["export"] = {**(entry["export"] or {}), "runtimes": "auto"}
    return {**shipped, "devices": DEVICES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["tiny_cnn", "resnet20", "mobilenetv2"])
    parser.add_argument("--recipes", nargs="*", type=Path, default=[], help="shipped recipes whose final model to measure")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-runtimes"))
    args = parser.parse_args()
    logging.getLogger("compress").setLevel(logging.WARNING)
    rows, choices = [], []
    cases = [(model, recipe(model, args.epochs)) for model in args.models] + [(path.stem, through_every_runtime(path)) for path in args.recipes]
    for model, raw in cases:
        done = runs.run(raw, args.out / model)
        report = done.report()
        stages = {s["name"]: done.metrics(s["name"]) for s in report["stages"]}
        variants = stages["validate"]["variants"]
        base = variants["onnx_fp32"]["host_latency_ms"]["p50"]
        parity = {name: row["parity"] for name, row in stages["export"].get("runtimes", {}).items()}
        parity["onnx_fp32"] = stages["export"]["parity"]
        agreement = {name: row["top1_agreement_with_fp32"] for name, row in stages["quantize"].get("runtimes", {}).items()}
        agreement["onnx_int8"] = stages["quantize"]["top1_agreement_with_fp32"]
        for name, v in sorted(variants.items(), key=lambda kv: kv[1]["host_latency_ms"]["p50"]):
            check = f"max abs {parity[name]['max_abs_diff']:.1e}" if name in parity else f"top-1 agrees with FP32 {agreement.get(name, float('nan')):.3f}"
            lat = v["host_latency_ms"]
            rows.append(f"| {model} | {name} | {v['accuracy']:.4f} | {check} | {v['size_bytes'] / 1024:.1f} | {v['size_gzip_bytes'] / 1024:.1f} "
                        f"| {lat['p50']:.4f} | {lat['p90']:.4f} | {lat['p50'] / base:.2f}x |")
        for device, entry in report["devices"].items():
            broken = [b for b, r in entry["budgets"].items() if r["passed"] is False]
            others = {n: c for n, c in entry["choice"]["candidates"].items() if n != entry["artifact"]}
            faster = sorted(n for n, c in others.items() if c["latency_ms"]["p50"] < entry["latency_ms"]["p50"])
            choices.append(f"| {model} | {device} | {entry['artifact']} | {', '.join(broken) or 'none'} | {', '.join(faster) or 'none'} |")
        print(f"{model}: {done.seconds:.0f} s", flush=True)
    print("| model | file | test accuracy (the run's data) | check | KiB | gzip KiB | p50 ms | p90 ms | p50 vs ONNX Runtime FP32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n| model | device | shipped | budgets it breaks | faster at the median, not shipped (more budgets broken, or within the noise and larger) |\n|---|---|---|---|---|")
    print("\n".join(choices))


if __name__ == "__main__":
    main()
