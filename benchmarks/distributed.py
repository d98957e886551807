"""One process against several (torchrun, DDP over gloo on CPUs) on the same recipe and seeds.

For each seed, `compress run RECIPE` and `compress run RECIPE --nproc N` run one after the other,
each in its own process tree, alone on the machine. Reported per run: wall time (process start to
exit, as a user waits for it), the structure `prune` left (output channels of every conv and
linear layer), and the test accuracy of the FP32 and INT8 files in onnxruntime after `validate`.
Nothing is chosen from these figures: the recipe is fixed beforehand, the seeds are 0..k-1.

    python benchmarks/distributed.py recipes/fashion-mnist.yaml [--nproc 2] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import yaml

import runs  # benchmarks/runs.py, beside this script


def structure(model_file: Path) -> list[int]:
    """Output channels of each conv/linear layer, in order, from a saved (pruned) model."""
    shapes = torch.load(model_file, map_location="cpu", weights_only=True)["shapes"]
    return [attrs["out_channels"] if "out_channels" in attrs else attrs["out_features"] for attrs in shapes.values() if "out_channels" in attrs or "out_features" in attrs]


def run_once(recipe: dict, seed: int, nproc: int, work: Path) -> dict:
    done = runs.run({**recipe, "seed": seed}, work / f"run-seed{seed}-n{nproc}", nproc=nproc)
    accuracy = {name: round(v["accuracy"], 4) for name, v in sorted(done.metrics("validate")["variants"].items())}
    return {"seed": seed, "nproc": nproc, "seconds": round(done.seconds, 1), "structure": structure(done.file("prune", "model.pt")), **accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    recipe = yaml.safe_load(args.recipe.read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for nproc in (1, args.nproc):
                rows.append(run_once(recipe, seed, nproc, Path(tmp)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    variants = [k for k in rows[0] if k.startswith("onnx_")]
    print(f"| seed | processes | wall s | vs 1 process | same pruned structure | {' | '.join(f'{v} test acc' for v in variants)} |")
    print("|---|---|---|---|---|" + "---|" * len(variants))
    for one, many in zip(rows[::2], rows[1::2]):
        for row in (one, many):
            ratio = row["seconds"] / one["seconds"]
            same = "yes" if row["structure"] == one["structure"] else f"no: {row['structure']}"
            print(f"| {row['seed']} | {row['nproc']} | {row['seconds']} | {ratio:.2f}x | {same} | {' | '.join(str(row[v]) for v in variants)} |")
    for nproc in (1, args.nproc):
        mine = [r for r in rows if r["nproc"] == nproc]
        spread = {v: (statistics.mean(r[v] for r in mine), statistics.pstdev(r[v] for r in mine)) for v in variants}
        print(f"\n{nproc} process(es): " + ", ".join(f"{v} {m:.4f} ± {s:.4f}" for v, (m, s) in spread.items())
              + f"; wall {statistics.mean(r['seconds'] for r in mine):.0f} s mean")
    print(f"\nstructure after prune (1 process, seed 0): {rows[0]['structure']}")


if __name__ == "__main__":
    main()
