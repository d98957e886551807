"""ResNet-20 pruned to the hand-written script's MACs, recovered several ways, judged on the VALIDATION split.

One pipeline-trained ResNet-20 (seed 0, 10 epochs at lr 4e-3, the peers.py setting) in `OUT/base`;
each variant copies it and runs a prune stage to keep_macs 0.2001 (the 6.30 M MACs the script in
`benchmarks/peers.py` reaches), so training is paid once and resumed. The choice between variants
reads each run's `rounds[-1].val_accuracy` only; the test figure comes after, from peers.py.

    python benchmarks/prune_recovery.py [--out /tmp/r20]       # ~20 min training, then ~10-25 min per variant, alone
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(path), "--out", str(out), "--quiet"], capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-2000:], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/r20"))
    args = parser.parse_args()
    base = args.out / "base"
    if not (base / "01-train" / "model.pt").exists():
        run(BASE, base)
    for name, prune in VARIANTS.items():
        folder = args.out / name
        if not (folder / "report.json").exists() or not (folder / "02-prune" / "metrics.json").exists():
            shutil.copytree(base, folder, dirs_exist_ok=True)
            run({**BASE, "stages": BASE["stages"] + [{"prune": {"target": {"keep_macs": 0.2001}, **prune}}]}, folder)
        metrics = json.loads((folder / "02-prune" / "metrics.json").read_text())
        print(f"{name}: val {metrics['rounds'][-1]['val_accuracy']:.4f}, {metrics['macs'] / 1e6:.2f} M MACs, {metrics['params']:,} params", flush=True)


if __name__ == "__main__":
    main()
