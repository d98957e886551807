"""Pruning a channel-shuffle network: plain torch-pruning beside the pipeline, with peak memory.

The baseline is what a user writes by hand: torch-pruning's MetaPruner on the zoo's ShuffleNetV2
(channel split + channel shuffle, torchvision's way of writing the shuffle), stepped toward 50 % of
each layer's channels, in a subprocess capped at 6 GB of address space and 300 s, so a blow-up is
reported instead of taking the machine down. The pipeline row runs a recipe on the same model
(train, prune to 60 % of the MACs with recovery, export, validate on the host); a MobileNetV2 row
runs the same recipe for scale. Each stage's peak RSS comes from its metrics.json.

    python benchmarks/shuffle_pruning.py [--epochs 2] [--out /tmp/compress-shuffle]

Prints markdown tables (docs/benchmarks.md holds the last output and its command).
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path


import runs  # benchmarks/runs.py, beside this script

BASELINE = textwrap.dedent(
    """
    import resource, time, torch, torch_pruning as tp
    from pipeline.models.zoo import shufflenetv2
    model = shufflenetv2()
    start = time.perf_counter()
    try:
        pruner = tp.pruner.MetaPruner(model, torch.zeros(1, 1, 28, 28), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                      pruning_ratio=0.5, iterative_steps=5, ignored_layers=[model.fc])
        for _ in range(5):
            pruner.step()
        outcome = f"pruned to {sum(p.numel() for p in model.parameters()):,} params"
    except Exception as e:
        outcome = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    print(outcome, "|", round(time.perf_counter() - start, 2), "|", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """
)


def baseline() -> dict:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, timeout=300, preexec_fn=cap)
    except subprocess.TimeoutExpired:
        return {"outcome": "still running after 300 s (killed)", "seconds": 300, "peak_mb": None}
    if done.returncode != 0 or "|" not in done.stdout:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"outcome": f"process died (exit {done.returncode}): {last[:100]}", "seconds": round(time.perf_counter() - started, 1), "peak_mb": None}
    outcome, seconds, peak = (part.strip() for part in done.stdout.strip().splitlines()[-1].split("|"))
    return {"outcome": outcome, "seconds": float(seconds), "peak_mb": int(peak)}


def pipeline_run(model: str, epochs: int, out: Path) -> list[dict]:
    recipe = {
        "name": f"shuffle-bench-{model}",
        "data": {"source": "embedded"},
        "model": {"name": model},
        "stages": [
            {"train": {"epochs": epochs, "lr": 0.01}},
            {"prune": {"target": {"keep_macs": 0.6}, "steps": 2, "finetune": {"epochs": 1, "lr": 0.003}}},
            {"export": {}},
            {"validate": {"runs": 100}},
        ],
        "devices": ["host"],
    }
    done = runs.run(recipe, out / recipe["name"], fresh=True)
    rows = []
    for stage in done.report()["stages"]:
        rows.append({"model": model, "stage": stage["folder"], "seconds": stage["seconds"], **stage["metrics"], "peak_rss_mb": done.metrics(stage["name"]).get("peak_rss_mb")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-shuffle"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    base = baseline()
    print("| plain torch-pruning on shufflenetv2 | outcome | seconds | peak RSS MB |\n|---|---|---|---|")
    print(f"| MetaPruner, 5 steps to 50 % per layer | {base['outcome']} | {base['seconds']} | {base['peak_mb'] if base['peak_mb'] is not None else '–'} |")
    print("\n| model | stage | seconds | test acc | params | MACs | peak RSS MB |\n|---|---|---|---|---|---|---|")
    for model in ("shufflenetv2", "mobilenetv2"):
        for r in pipeline_run(model, args.epochs, args.out):
            print(f"| {r['model']} | {r['stage']} | {r['seconds']:.1f} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
