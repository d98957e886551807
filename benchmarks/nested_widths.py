"""One nested training against a network per width, on the same data, in one invocation.

Three ways to get a network at each width (the same channel counts at each width on every side):

1. `nested`: one training of `--epochs` epochs (sandwich rule, in-place distillation), each width sliced;
2. separately: the architecture at that width trained from scratch for `--epochs` epochs, per width;
3. pruned: the separately trained full width pruned to that width's MACs (`prune`, 2 rounds,
   distillation recovery, `--epochs // 2` recovery epochs in all), per width.

Every width's exported ONNX file is scored on the test split and timed (batch 1, one thread, all
files interleaved). Final epochs everywhere: nothing is chosen on the test split.

    python benchmarks/nested_widths.py [--model tiny_cnn|resnet20] [--epochs 10] [--widths 0.25 0.5 0.75 1.0] [--distill-weight 1.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe
from pipeline.runtime.onnx_files import HOST_THREADS, measure_latencies
from pipeline.widths.groups import kept

BASE_WIDTHS = {"tiny_cnn": [8, 16, 32, 32], "resnet20": [16, 32, 64]}  # the zoo's defaults (the `widths` argument)


def run(name: str, model: dict, stages: list[dict], args, out: Path) -> tuple[dict, float, Path]:
    spec = {"name": name, "seed": args.seed, "data": {"source": args.source}, "model": model, "stages": stages, "devices": ["host"]}
    started = time.perf_counter()
    report = run_recipe(parse_recipe(spec), out / name, quiet=True)
    return report, time.perf_counter() - started, out / name


def stage_metrics(folder: Path, stage: str) -> dict:
    return json.loads(next(folder.glob(f"*-{stage}/metrics.json")).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(BASE_WIDTHS), default="tiny_cnn")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--distill-weight", type=float, default=1.0, help="nested.distill_weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default="fashion-mnist", help="data source (embedded: a quick smoke run)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-nested"))
    args = parser.parse_args()
    train = {"epochs": args.epochs, "lr": 0.01}
    rows: list[dict] = []

    _, seconds, folder = run("nested", {"name": args.model}, [{"nested": {"widths": args.widths, "distill_weight": args.distill_weight, "train": train}}, {"export": {}}], args, args.out)
    nested = {r["width"]: r for r in stage_metrics(folder, "nested")["widths"]}
    for r in stage_metrics(folder, "export")["widths"]:
        rows.append({"how": "nested (one training)", "width": r["width"], "accuracy": r["accuracy"], "params": r["params"],
                     "macs": nested[r["width"]]["macs"], "file": folder / r["file"], "seconds": seconds if r["width"] == max(args.widths) else None})

    full_checkpoint = None
    for width in sorted(args.widths, reverse=True):
        channels = [kept(c, width) for c in BASE_WIDTHS[args.model]]
        _, seconds, folder = run(f"separate-w{width:g}", {"name": args.model, "kwargs": {"widths": channels}}, [{"train": train}, {"export": {}}], args, args.out)
        exported = stage_metrics(folder, "export")
        rows.append({"how": "separately trained", "width": width, "accuracy": exported["accuracy"], "params": exported["params"],
                     "macs": exported["macs"], "file": next(folder.glob("*-export/model.onnx")), "seconds": seconds})
        if width == 1:
            full_checkpoint, full_macs = str(next(folder.glob("*-train/model.pt"))), exported["macs"]

    if full_checkpoint:
        for width in sorted(w for w in args.widths if w < 1):
            separate = next(r for r in rows if r["how"] == "separately trained" and r["width"] == width)
            prune = {"target": {"keep_macs": separate["macs"] / full_macs}, "steps": 2, "schedule": "geometric", "recovery": "distill",
                     "finetune": {"epochs": max(1, args.epochs // 4), "lr": 0.01}}
            _, seconds, folder = run(f"pruned-w{width:g}", {"name": args.model, "checkpoint": full_checkpoint}, [{"prune": prune}, {"export": {}}], args, args.out)
            exported = stage_metrics(folder, "export")
            rows.append({"how": "full width pruned", "width": width, "accuracy": exported["accuracy"], "params": exported["params"],
                         "macs": exported["macs"], "file": next(folder.glob("*-export/model.onnx")), "seconds": seconds})

    sample_file = rows[0]["file"]

    shape = [d if isinstance(d, int) else 1 for d in ort.InferenceSession(str(sample_file)).get_inputs()[0].shape]
    timed = measure_latencies({i: r["file"] for i, r in enumerate(rows)}, np.zeros(shape, np.float32), HOST_THREADS, warmup=50, runs=1000, rounds=20)
    print(f"model {args.model}, {args.epochs} epochs, seed {args.seed}; widths {args.widths}, distill_weight {args.distill_weight}")
    print("| width | how | test acc | params | MACs | p50 ms | wall s |\n|---|---|---|---|---|---|---|")
    for i, r in sorted(enumerate(rows), key=lambda ir: (ir[1]["width"], ir[1]["how"])):
        wall = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        print(f"| {r['width']:g} | {r['how']} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | {timed[i]['p50']:.4f} | {wall} |")
    totals = {how: sum(r["seconds"] or 0 for r in rows if r["how"] == how) for how in dict.fromkeys(r["how"] for r in rows)}
    nested_s = totals["nested (one training)"]
    print("\nwall time for every width: " + ", ".join(f"{how} {s:.0f} s ({s / nested_s:.2f}x nested)" for how, s in totals.items()))


if __name__ == "__main__":
    main()
