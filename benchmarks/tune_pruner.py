"""Does Hyperband pay in `compress tune`? One space with a fixed schedule, searched with and without it.

    python benchmarks/tune_pruner.py [--trials 20] [--data fashion-mnist|embedded] [--rung 4 …] [--space fixed|one-line] [--seed 0]
                                     [--out runs/bench-tune-pruner]

A pruner compares trials at a rung, so it is only fair when every trial trains on the same
schedule: here a tiny_cnn trained 3 epochs (the same base for every trial, made once by the stage
store), then pruned in 2 rounds of 3 recovery epochs each, exported, INT8 and validated for a
Raspberry Pi 4 and an Intel N100. The space leaves the epochs out: how much to prune, the recovery
learning rate, the INT8 route. Every study runs TPE with the same seed (`--seed`, 0 unless told) and the same trials budget: one
without a pruner, then one with Hyperband (reduction factor 3) per first rung, by default epoch 4,
the first recovery epoch. The pruner reads a trial only where a schedule ends (epochs 3, 6 and 9
here), so that rung is read at epoch 6, where the first round's one-cycle schedule has annealed.
Epochs 1-3 are the shared base, the same in every trial.
`--space one-line` runs the one-line form's default space instead (`compress tune --model tiny_cnn
--device raspberry-pi-4 --device intel-n100`): it searches the schedule itself (training epochs and
learning rate, how much to prune, recovery epochs, the INT8 route), where the tune runs no pruner by
default; this asks whether Hyperband, reading schedule ends, would serve there.
Reported: each study's wall time (ratio to the one without a pruner), trials finished and stopped,
and each device's pick on validation with its test figure read after. One run each, alone on the
machine: a whole study cannot be interleaved with another, and the studies draw different trials once
TPE leaves its random start-up (a stopped trial tells the sampler less than a finished one).
"""

from __future__ import annotations

import argparse
import copy
import shutil
from pathlib import Path

from tune_study import RECIPE, ROOT, run_tune

TRAIN_EPOCHS, RECOVERY_EPOCHS = 3, 3
SPACE = {
    "prune.target.keep_macs": {"float": [0.3, 0.9]},
    "prune.finetune.lr": {"float": [0.001, 0.03], "log": True},
    "quantize.method": {"choice": ["static", "accuracy_aware"]},
}


def fixed_schedule(data: str) -> dict:
    recipe = copy.deepcopy(RECIPE)
    recipe["data"] = {"source": data}
    for entry in recipe["stages"]:
        if "train" in entry:
            entry["train"]["epochs"] = TRAIN_EPOCHS
        if "prune" in entry:
            entry["prune"]["finetune"]["epochs"] = RECOVERY_EPOCHS
    return recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--data", choices=["embedded", "fashion-mnist"], default="fashion-mnist")
    parser.add_argument("--space", choices=["fixed", "one-line"], default="fixed",
                        help="one-line: the default space of `compress tune --model … --device …`, which searches the schedule")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-tune-pruner")
    parser.add_argument("--seed", type=int, default=0, help="TPE's seed, the same in every study (another seed: another random start-up)")
    parser.add_argument("--rung", type=int, action="append",
                        help="Hyperband's first rung, in epochs over the recipe (repeatable: one study each); default: the first "
                             "recovery epoch (4), read at the end of the first round (6), where its one-cycle schedule has annealed")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    recipe, space = fixed_schedule(args.data), SPACE
    if args.space == "one-line":
        from pipeline.tune.default_space import default_spec

        spec = default_spec("tiny_cnn", {"source": args.data}, ["raspberry-pi-4", "intel-n100"], args.trials, None)
        recipe, space = {k: v for k, v in spec.items() if k != "tune"}, spec["tune"]["space"]
    studies = {"no pruner": run_tune(args.out / "none", args.trials, recipe, space, seed=args.seed)}
    for rung in args.rung or [TRAIN_EPOCHS + 1]:
        studies[f"Hyperband, first rung at epoch {rung}"] = run_tune(args.out / f"hyperband-{rung}", args.trials, recipe, space,
                                                                     pruner="hyperband", min_epochs=rung, reduction_factor=3, seed=args.seed)
    base = studies["no pruner"]["seconds"]
    print("| study | trials finished | stopped by the pruner | wall s (ratio to no pruner) | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, study in studies.items():
        counts = study["summary"]["trials"]
        print(f"| {name} | {counts['complete']} | {counts['pruned']} | {study['seconds']:.0f} ({study['seconds'] / base:.2f}x) | "
              f"{study['peak_rss_mb']:.0f} |")
    print()
    print("| device | study | trial picked | keep_macs | validation | test (read after the choice) |")
    print("|---|---|---|---|---|---|")
    for name, study in studies.items():
        for device, pick in study["summary"]["devices"].items():
            keep = pick["values"]["prune.target.keep_macs"]
            print(f"| {device} | {name} | {pick['trial']} | {keep:.3f} | {pick['val_accuracy']:.4f} | {pick['test_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
