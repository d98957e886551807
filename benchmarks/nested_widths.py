"""One nested training against a network per width, on the same data, in one invocation.

Three ways to get a network at each width (the same channel counts at each width on every side):

1. `nested`: one training of `--epochs` epochs (sandwich rule, in-place distillation), each width sliced;
2. separately: the architecture at that width trained from scratch for `--epochs` epochs, per width;
3. pruned: the separately trained full width pruned to that width's MACs, per width, the way
   chosen for that model on the validation split (`CASES`).

Every width's exported ONNX file is scored on the test split and timed (batch 1, one thread, all
files interleaved). At the end the chosen nested run is resumed with static INT8 and `validate` on
the shipped device profiles, which shows the width each device gets and why. Final epochs everywhere. With several `--distill-weight` values, one nested
training runs per value (and per `--sampled` value: widths trained each step between the
smallest and the full one), and the one with the best mean validation accuracy over the widths is
marked as chosen: nothing is chosen on the test split.

    python benchmarks/nested_widths.py [--model tiny_cnn|resnet20] [--epochs 10] [--widths 0.25 0.5 0.75 1.0] [--distill-weight 1.0 0.3] [--sampled 1 2] [--seed 0]
        [--source image_folder --data-path data/fashion-mnist-png --input-size 32]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.runtime.onnx_files import HOST_THREADS, measure_latencies
from pipeline.widths.groups import kept

import runs  # benchmarks/runs.py, beside this script

BASE_WIDTHS = {"tiny_cnn": [8, 16, 32, 32], "resnet20": [16, 32, 64]}  # the zoo's defaults (the `widths` argument)
CASES = {  # learning rate and pruning recovery per model, each chosen on the validation split (docs/benchmarks.md)
    "tiny_cnn": {"lr": 0.01, "prune": {"steps": 2, "schedule": "geometric", "recovery": "distill", "epochs": lambda e: max(1, e // 4), "lr": 0.01}},
    "resnet20": {"lr": 4e-3, "prune": {"steps": 1, "recovery": "finetune", "epochs": lambda e: max(1, e // 2), "lr": 2e-3}},  # as recipes/fashion-mnist-8m-macs.yaml
}


def run(name: str, model: dict, stages: list[dict], args, out: Path, devices: list[str] = ("host",)) -> tuple[dict, float, runs.Run]:
    data = {"source": args.source, **({"path": str(args.data_path)} if args.data_path else {}), **({"input_size": args.input_size} if args.input_size else {})}
    spec = {"name": name, "seed": args.seed, "data": data, "model": model, "stages": stages, "devices": list(devices)}
    done = runs.run(spec, out / name)
    return done.report(), done.stage_seconds(), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(BASE_WIDTHS), default="tiny_cnn")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--distill-weight", type=float, nargs="+", default=[1.0], help="nested.distill_weight; several: one nested training each, chosen on validation")
    parser.add_argument("--sampled", type=int, nargs="+", default=[1], help="nested.sampled; several: one nested training each, chosen on validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", nargs="*", default=["raspberry-pi-zero-2w", "raspberry-pi-4", "cortex-a76-phone"],
                        help="device profiles that judge the chosen nested run's widths at the end (none: skip)")
    parser.add_argument("--source", default="fashion-mnist", help="data source (embedded: a quick smoke run)")
    parser.add_argument("--data-path", type=Path, help="data.path: an image folder (source image_folder) or IDX/npz files")
    parser.add_argument("--input-size", type=int, help="data.input_size for an image folder")
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-nested"))
    args = parser.parse_args()
    case = CASES[args.model]
    train = {"epochs": args.epochs, "lr": case["lr"]}
    rows: list[dict] = []

    validation: dict[tuple[float, int], dict[float, float]] = {}
    settings = [(weight, sampled) for sampled in args.sampled for weight in args.distill_weight]

    def nested_stages(setting: tuple[float, int]) -> list[dict]:
        weight, sampled = setting
        return [{"nested": {"widths": args.widths, "distill_weight": weight, "sampled": sampled, "train": train}}, {"export": {}}]

    def nested_name(setting: tuple[float, int]) -> str:
        weight, sampled = setting  # sampled 1 (the default) keeps the name of the runs made before --sampled, so they resume
        return "nested" if len(settings) == 1 else f"nested-d{weight:g}" + (f"-s{sampled}" if sampled != 1 else "")

    def nested_how(setting: tuple[float, int]) -> str:
        weight, sampled = setting
        return f"nested (one training, distill {weight:g}, sampled {sampled})"

    for setting in settings:
        _, seconds, done = run(nested_name(setting), {"name": args.model}, nested_stages(setting), args, args.out)
        nested = {r["width"]: r for r in done.metrics("nested")["widths"]}
        validation[setting] = {w: r["val_accuracy"] for w, r in nested.items()}
        for r in done.metrics("export")["widths"]:
            rows.append({"how": nested_how(setting), "width": r["width"], "accuracy": r["accuracy"], "params": r["params"],
                         "macs": nested[r["width"]]["macs"], "file": done.folder.resolve(r["file"]), "seconds": seconds if r["width"] == max(args.widths) else None})
    chosen = max(validation, key=lambda setting: np.mean(list(validation[setting].values())))

    full_checkpoint = None
    for width in sorted(args.widths, reverse=True):
        channels = [kept(c, width) for c in BASE_WIDTHS[args.model]]
        _, seconds, done = run(f"separate-w{width:g}", {"name": args.model, "kwargs": {"widths": channels}}, [{"train": train}, {"export": {}}], args, args.out)
        exported = done.metrics("export")
        rows.append({"how": "separately trained", "width": width, "accuracy": exported["accuracy"], "params": exported["params"],
                     "macs": exported["macs"], "file": done.file("export", "model.onnx"), "seconds": seconds})
        if width == 1:
            full_checkpoint, full_macs = str(done.file("train", "model.pt")), exported["macs"]

    if full_checkpoint:
        for width in sorted(w for w in args.widths if w < 1):
            separate = next(r for r in rows if r["how"] == "separately trained" and r["width"] == width)
            how = case["prune"]
            prune = {"target": {"keep_macs": separate["macs"] / full_macs}, "steps": how["steps"], "recovery": how["recovery"],
                     "finetune": {"epochs": how["epochs"](args.epochs), "lr": how["lr"]}, **({"schedule": how["schedule"]} if "schedule" in how else {})}
            _, seconds, done = run(f"pruned-w{width:g}", {"name": args.model, "checkpoint": full_checkpoint}, [{"prune": prune}, {"export": {}}], args, args.out)
            exported = done.metrics("export")
            rows.append({"how": "full width pruned", "width": width, "accuracy": exported["accuracy"], "params": exported["params"],
                         "macs": exported["macs"], "file": done.file("export", "model.onnx"), "seconds": seconds})

    sample_file = rows[0]["file"]

    shape = [d if isinstance(d, int) else 1 for d in ort.InferenceSession(str(sample_file)).get_inputs()[0].shape]
    timed = measure_latencies({i: r["file"] for i, r in enumerate(rows)}, np.zeros(shape, np.float32), HOST_THREADS, warmup=50, runs=1000, rounds=20)
    print(f"model {args.model}, {args.epochs} epochs at lr {case['lr']:g}, seed {args.seed}; widths {args.widths}")
    for setting, accuracies in validation.items():
        mark = " (chosen)" if setting == chosen and len(validation) > 1 else ""
        print(f"{nested_how(setting)}{mark}: validation mean {np.mean(list(accuracies.values())):.4f}; "
              + ", ".join(f"w{w:g} {a:.4f}" for w, a in sorted(accuracies.items())))
    print("| width | how | test acc | params | MACs | p50 ms | wall s |\n|---|---|---|---|---|---|---|")
    for i, r in sorted(enumerate(rows), key=lambda ir: (ir[1]["width"], ir[1]["how"])):
        wall = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        print(f"| {r['width']:g} | {r['how']} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | {timed[i]['p50']:.4f} | {wall} |")
    totals = {how: sum(r["seconds"] or 0 for r in rows if r["how"] == how) for how in dict.fromkeys(r["how"] for r in rows)}
    nested_s = totals[nested_how(chosen)]
    print("\nwall time for every width: " + ", ".join(f"{how} {s:.0f} s ({s / nested_s:.2f}x the chosen nested)" for how, s in totals.items()))

    if args.devices:  # the chosen nested run resumed (its training reused) with INT8 and validation on the device profiles
        stages = nested_stages(chosen) + [{"quantize": {"method": "static"}}, {"validate": {}}]
        report, _, _ = run(nested_name(chosen), {"name": args.model}, stages, args, args.out, devices=args.devices)
        print("\n| device | ships | passed | why |\n|---|---|---|---|")
        for device, verdict in report["devices"].items():
            print(f"| {device} | {verdict['artifact']} | {verdict['passed']} | {verdict['choice']['reason']} |")


if __name__ == "__main__":
    main()
