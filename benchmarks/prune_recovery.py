"""ResNet-20 pruned to the hand-written script's MACs, recovered several ways, judged on the VALIDATION split.

One pipeline-trained ResNet-20 (seed 0, 10 epochs at lr 4e-3, the peers.py setting) in `OUT/base`;
each variant copies it and runs a prune stage to keep_macs 0.2001 (the 6.30 M MACs the script in
`benchmarks/peers.py` reaches), so training is paid once and resumed. The choice between variants
reads each run's `rounds[-1].val_accuracy` only; the test figure comes after, from peers.py.

    python benchmarks/prune_recovery.py [--out /tmp/r20]       # ~20 min training, then ~10-25 min per variant, alone
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


import runs  # benchmarks/runs.py, beside this script

BASE = {"name": "r20", "seed": 0, "data": {"source": "fashion-mnist"}, "model": {"name": "resnet20"},
        "stages": [{"train": {"epochs": 10, "lr": 4e-3}}], "devices": ["host"]}
VARIANTS = {
    "A-1round-distill-2e-3": {"steps": 1, "recovery": "distill", "finetune": {"epochs": 5, "lr": 2e-3}},
    "B-1round-finetune-2e-3": {"steps": 1, "recovery": "finetune", "finetune": {"epochs": 5, "lr": 2e-3}},
    "E-5rounds-distill-1e-2": {"steps": 5, "schedule": "geometric", "recovery": "distill", "finetune": {"epochs": 1, "lr": 0.01}},
    "F-1round-finetune-4e-3": {"steps": 1, "recovery": "finetune", "finetune": {"epochs": 5, "lr": 4e-3}},
    "G-1round-lamp-finetune-2e-3": {"steps": 1, "importance": "lamp", "recovery": "finetune", "finetune": {"epochs": 5, "lr": 2e-3}},
    "H-1round-lamp-global-finetune-2e-3": {"steps": 1, "importance": "lamp", "global_pruning": True, "recovery": "finetune",
                                           "finetune": {"epochs": 5, "lr": 2e-3}},
    "I-1round-taylor-finetune-2e-3": {"steps": 1, "importance": "taylor", "recovery": "finetune", "finetune": {"epochs": 5, "lr": 2e-3}},
}


def run(recipe: dict, out: Path) -> None:
    try:
        runs.run(recipe, out)
    except runs.RunFailed as e:  # a variant that fails is a result too
        print(e, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/r20"))
    args = parser.parse_args()
    base = args.out / "base"
    if runs.finished(base) is None:
        run(BASE, base)
    for name, prune in VARIANTS.items():
        folder = args.out / name
        done = runs.finished(folder)
        if done is None or "prune" not in [s["name"] for s in done.report()["stages"]]:
            shutil.copytree(base, folder, dirs_exist_ok=True)  # the trained base is reused: only prune runs
            run({**BASE, "stages": BASE["stages"] + [{"prune": {"target": {"keep_macs": 0.2001}, **prune}}]}, folder)
            done = runs.finished(folder)
        metrics = done.metrics("prune")
        print(f"{name}: val {metrics['rounds'][-1]['val_accuracy']:.4f}, {metrics['macs'] / 1e6:.2f} M MACs, {metrics['params']:,} params", flush=True)


if __name__ == "__main__":
    main()
