"""Do the training-side techniques pay? One run, same data, same epochs, several seeds.

1. plain training vs aux_heads + self_distill (BYOT) vs self_distill (PS-KD) vs self_distill (SLA+SD):
   test accuracy of the exported ONNX model, mean and spread over seeds;
2. pruning to the same MACs target with recovery by plain fine-tuning vs by distillation from the
   unpruned model vs distillation with Dual-Head KD (all start from the plain model of the first seed);
3. early exit (the BYOT models keep their heads as exits): share of samples leaving at each exit,
   accuracy, expected latency vs the full model.

    python benchmarks/training_techniques.py [--epochs 10] [--seeds 0 1 2] [--model tiny_cnn] [--out /tmp/compress-techniques]
        [--methods plain byot pskd sla] [--recoveries finetune distill dual_head]

Prints markdown tables (docs/benchmarks.md holds the last output and its command).
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path


import runs  # benchmarks/runs.py, beside this script


def recipe(name: str, seed: int, model: dict, stages: list[dict]) -> dict:
    return {"name": name, "seed": seed, "data": {"source": "fashion-mnist"}, "model": model, "stages": stages, "devices": ["host"]}


def train(epochs: int) -> dict:
    return {"epochs": epochs, "lr": 0.01}


def run(spec: dict, out: Path) -> tuple[runs.Run, float]:
    done = runs.run(spec, out / spec["name"])
    return done, done.stage_seconds()  # the stages' own seconds: a resumed rerun reports the same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="tiny_cnn")
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-techniques"))
    parser.add_argument("--methods", nargs="+", default=["plain", "byot", "pskd", "sla"], help="plain always runs: it is the baseline")
    parser.add_argument("--recoveries", nargs="+", default=["finetune", "distill", "dual_head"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model, e = {"name": args.model}, args.epochs
    exits = {"exits": ["head1", "head2"], "exit_max_accuracy_drop": 0.5}
    methods = {  # short name: (label, stages)
        "plain": ("plain", lambda: [{"train": train(e)}, {"export": {}}]),
        "byot": ("aux_heads + self_distill (BYOT)", lambda: [
            {"aux_heads": {"kind": "bottleneck", "train": {"epochs": 0}}},
            {"self_distill": {"mode": "byot", "train": train(e)}},
            {"export": exits},
            {"validate": {"runs": 500}},
        ]),
        "pskd": ("self_distill (PS-KD)", lambda: [{"self_distill": {"mode": "pskd", "train": train(e)}}, {"export": {}}]),
        "sla": ("self_distill (SLA+SD)", lambda: [{"self_distill": {"mode": "sla", "train": train(e)}}, {"export": {}}]),
    }
    methods = {k: v for k, v in methods.items() if k == "plain" or k in args.methods}
    rows, byot_reports = [], []
    for short, (method, stages) in methods.items():
        accs, seconds = [], []
        for seed in args.seeds:
            name = f"{short}-s{seed}"
            done, wall = run(recipe(name, seed, model, stages()), args.out)
            accs.append(done.metrics("export")["accuracy"])
            seconds.append(wall)
            if short == "byot":
                byot_reports.append((name, done))
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        rows.append((method, accs, statistics.mean(accs), spread, statistics.mean(seconds)))

    print(f"### 1. Self-distillation vs plain training ({args.model}, {e} epochs, seeds {args.seeds})\n")
    print("| method | test accuracy per seed (exported ONNX) | mean | std | wall s per run |")
    print("|---|---|---|---|---|")
    for method, accs, mean, spread, wall in rows:
        print(f"| {method} | {', '.join(f'{a:.4f}' for a in accs)} | {mean:.4f} | {spread:.4f} | {wall:.0f} |")

    base = runs.finished(args.out / f"plain-s{args.seeds[0]}").file("train", "model.pt")
    print("\n### 2. Pruning recovery: fine-tuning vs distillation from the unpruned model\n")
    print("| recovery | MACs kept | params | test accuracy (ONNX) | wall s |")
    print("|---|---|---|---|---|")
    for recovery in args.recoveries:
        name = f"prune-{recovery}"
        prune = {"target": {"keep_macs": 0.5}, "steps": 3, "recovery": "finetune" if recovery == "finetune" else "distill", "finetune": {"epochs": 2, "lr": 0.003}}
        if recovery == "dual_head":
            prune["distill"] = {"dual_head_weight": 1.0}
        done, wall = run(recipe(name, args.seeds[0], {**model, "checkpoint": str(base)}, [{"prune": prune}, {"export": {}}]), args.out)
        pruned = done.metrics("prune")
        acc = done.metrics("export")["accuracy"]
        print(f"| {recovery} | {pruned['macs'] / pruned['before']['macs']:.1%} | {pruned['params']:,} | {acc:.4f} | {wall:.0f} |")

    if not byot_reports:
        return
    print("\n### 3. Early exit (BYOT models, thresholds chosen on the validation split within 0.5 points)\n")
    print("| run | exits: share leaving (accuracy there) | cascade accuracy | full model | expected p50 µs | full model p50 µs |")
    print("|---|---|---|---|---|---|")
    for name, done in byot_reports:
        early = done.metrics("validate")["early_exit"]
        host = early["host_latency_ms"]
        shares = ", ".join(
            f"{r['exit']} {r['fraction']:.1%} ({r['accuracy']:.3f})" if r["accuracy"] is not None else f"{r['exit']} 0%" for r in early["exits"]
        )
        print(
            f"| {name} | {shares} | {early['accuracy']:.4f} | {early['full_model_accuracy']:.4f} | "
            f"{host['expected'] * 1000:.1f} | {host['full_model'] * 1000:.1f} |"
        )


if __name__ == "__main__":
    main()
