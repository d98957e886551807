"""Where to cut within a fixed epoch budget: train E epochs, prune once, recover the rest, on several seeds.

A user's script trains ResNet-20 for 10 epochs and fine-tunes the pruned net for 5 (benchmarks/peers.py).
The pruned net is a quarter of the MACs, so its epochs are cheaper, and it may use more of them: this
runs, for each split E + (15 - E) and each seed, `compress run` with `train` (E epochs, lr 4e-3) then
`prune` (keep_macs as the script reaches, one cut, fine-tune 15 - E epochs), the validation split held
out (54 k training images), and the hand-written script (all 60 k images) at the splits in `--peer-splits`.

The choice between splits reads only the validation figure (mean over seeds of the prune stage's
`rounds[-1].val_accuracy`); the test figure of every run is printed beside it and is read after.
Runs go in parallel (`--parallel`), each in its own process, which a GPU machine with many cores
absorbs; on 2 cores run with `--parallel 1` and expect ~25 min per ResNet-20 run.

    python benchmarks/prune_split.py --out OUT [--splits 10 7 5 3] [--seeds 0 1 2] [--peer-splits 10 5] [--accelerator cuda] [--parallel 18]

Each finished run leaves OUT/<name>.json, so a rerun skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import runs  # benchmarks/runs.py, beside this script

TOTAL_EPOCHS, TRAIN_LR, FINETUNE_LR = 15, 4e-3, 2e-3  # peers.py's ResNet-20 case
SCRIPT_KEEP_MACS = 6.8 / 31.48  # what the script asks for; its per-layer ratio 1 - sqrt(keep) lands at 6.30 M MACs
PIPELINE_KEEP_MACS = 0.2001  # the share the script lands at, so both sides end at the same MACs


def pipeline_run(split: int, seed: int, accelerator: str, out: Path, subset: int | None = None) -> dict:
    folder = out / f"pipeline-e{split}-s{seed}"
    data = {"source": "fashion-mnist", **({"train_subset": subset} if subset else {})}
    recipe = {
        "name": folder.name, "seed": seed, "accelerator": accelerator, "data": data, "model": {"name": "resnet20"},
        "stages": [
            {"train": {"epochs": split, "lr": TRAIN_LR}},
            {"prune": {"target": {"keep_macs": PIPELINE_KEEP_MACS}, "steps": 1, "recovery": "finetune",
                       "finetune": {"epochs": TOTAL_EPOCHS - split, "lr": FINETUNE_LR}}},
        ],
        "devices": ["host"],
    }
    try:
        done = runs.run(recipe, folder)
    except runs.RunFailed as e:
        return {"name": folder.name, "error": str(e)[-1500:]}
    trained, pruned = done.metrics("train"), done.metrics("prune")
    return {"name": folder.name, "side": "pipeline", "split": split, "seed": seed, "seconds": done.seconds,
            "trained_test": trained["accuracy"], "val": pruned["rounds"][-1]["val_accuracy"], "test": pruned["accuracy"],
            "macs": pruned["macs"], "params": pruned["params"]}


def peer_run(split: int, seed: int, accelerator: str, data: Path, subset: int | None = None) -> dict:
    """The hand-written script of peers.py, in this process's own thread: train, one cut, fine-tune, test in PyTorch."""
    import torch
    import torch_pruning as tp

    from benchmarks.peers import peer_data, peer_prune, peer_train
    from pipeline.models import ModelConfig, build_model

    device = torch.device("cuda" if accelerator == "cuda" else "cpu")
    x, y, x_test, y_test = (t.to(device) for t in peer_data(data))
    x, y = x[:subset], y[:subset]
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = build_model(ModelConfig(name="resnet20"), 1, 10).to(device)
    started = time.perf_counter()
    peer_train(model, x, y, split, lr=TRAIN_LR)
    trained_test = torch_accuracy(model, x_test, y_test)
    peer_prune(model, SCRIPT_KEEP_MACS)
    peer_train(model, x, y, TOTAL_EPOCHS - split, lr=FINETUNE_LR)
    macs, params = tp.utils.count_ops_and_params(model.eval(), torch.zeros(1, 1, 28, 28, device=device))
    return {"name": f"peer-e{split}-s{seed}", "side": "by hand", "split": split, "seed": seed, "seconds": time.perf_counter() - started,
            "trained_test": trained_test, "val": None, "test": torch_accuracy(model, x_test, y_test), "macs": int(macs), "params": int(params)}


def torch_accuracy(model, x, y) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        right = sum(int((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum()) for i in range(0, len(y), 1000))
    model.train()
    return right / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--splits", type=int, nargs="+", default=[10, 7, 5, 3], help="the pipeline's training epochs before the cut (of 15)")
    parser.add_argument("--peer-splits", type=int, nargs="*", default=[10], help="the same for the hand-written script")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--accelerator", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--train-subset", type=int, help="a smoke test: this many training images on both sides (figures meaningless)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("COMPRESS_DATA", "/usr/share/datasets/fashion-mnist")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(f"pipeline-e{e}-s{s}", lambda e=e, s=s: pipeline_run(e, s, args.accelerator, args.out, args.train_subset)) for e in args.splits for s in args.seeds]
    if args.peer_splits:
        # the peer runs in a child process each, like the pipeline (threads would share one GIL and one torch thread pool)
        jobs += [(f"peer-e{e}-s{s}", lambda e=e, s=s: child_peer(e, s, args)) for e in args.peer_splits for s in args.seeds]

    def run(job) -> dict:
        name, call = job
        done = args.out / f"{name}.json"
        if done.exists():
            return json.loads(done.read_text())
        result = call()
        if "error" not in result:
            done.write_text(json.dumps(result))
        print(json.dumps(result), flush=True)
        return result

    with ThreadPoolExecutor(args.parallel) as pool:
        results = [r for r in pool.map(run, jobs) if "error" not in r]
    print_table(results)


def child_peer(split: int, seed: int, args) -> dict:
    code = (f"import json, sys; from pathlib import Path; sys.path.insert(0, 'benchmarks'); from prune_split import peer_run; "
            f"print(json.dumps(peer_run({split}, {seed}, {args.accelerator!r}, Path({str(args.data)!r}), {args.train_subset})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        return {"name": f"peer-e{split}-s{seed}", "error": done.stderr[-1500:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: list[dict]) -> None:
    print("\n| side | split (train + fine-tune) | seeds | validation, mean | test, mean ± sd | trained test, mean | params | MACs | seconds, mean |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (side, split) in sorted({(r["side"], r["split"]) for r in results}, key=lambda k: (k[0], -k[1])):
        rows = [r for r in results if (r["side"], r["split"]) == (side, split)]
        val = f"{np.mean([r['val'] for r in rows]):.4f}" if rows[0]["val"] is not None else "(no hold-out)"
        tests = [r["test"] for r in rows]
        print(f"| {side} | {split} + {TOTAL_EPOCHS - split} | {','.join(str(r['seed']) for r in rows)} | {val} | {np.mean(tests):.4f} ± {np.std(tests):.4f} | "
              f"{np.mean([r['trained_test'] for r in rows]):.4f} | {rows[0]['params']:,} | {rows[0]['macs'] / 1e6:.2f} M | {np.mean([r['seconds'] for r in rows]):.0f} |")
    for r in sorted(results, key=lambda r: (r["side"], -r["split"], r["seed"])):
        print(f"  {r['name']}: val {r['val']}, test {r['test']:.4f}, trained {r['trained_test']:.4f}, {r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
