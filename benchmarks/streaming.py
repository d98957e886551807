"""Streaming from an image folder against arrays in memory, and the training loop against a plain one.

1. Data throughput, images/s into the training step over one epoch of the training images:
   a plain `DataLoader` + Pillow script (what a user writes) vs the pipeline's `image_folder` split
   (which also checks every item's contract as it streams), same folder, same batch size, same
   workers; `--repeats` epochs of each, interleaved, the ratio the median of the per-repeat ratios.
2. Training time per epoch: the pipeline's loop (`fit`) vs a plain hand-written loop (AdamW,
   one-cycle, flip + shift) on the same model and in-memory data.
3. Peak RSS and accuracy of `compress run` (train, export, validate) on the Fashion-MNIST PNG folder
   (70 k files), on the embedded PNG folder (7 k) and on the IDX arrays, each in its own process.

    python benchmarks/fashion_mnist_to_png.py /tmp/fmnist-png            # 70 k PNGs, once
    python benchmarks/fashion_mnist_to_png.py /tmp/fmnist-png-7k --source embedded
    python benchmarks/streaming.py /tmp/fmnist-png /tmp/fmnist-png-7k [--epochs 2] [--workers 2] [--repeats 5] [--throughput-only]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from pipeline.data import DataConfig, load_data
from pipeline.models import ModelConfig, build_model
from pipeline.training.augment import Augment, augment
from pipeline.training.loop import TrainConfig, fit

import runs  # benchmarks/runs.py, beside this script


class PlainFolder(Dataset):
    """The thirty lines a user writes: list the files, decode with Pillow, scale, normalise."""

    def __init__(self, root: Path):
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.files = [(f, k) for k, c in enumerate(classes) for f in sorted((root / c).glob("*.png"))]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path, label = self.files[i]
        x = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0)[None]
        return (x - 0.286) / 0.353, label


def throughput(batches) -> float:
    start, count = time.perf_counter(), 0
    for x, *_ in batches:
        count += len(x)
    return count / (time.perf_counter() - start)


def plain_epoch(model, x_all, y_all, epochs_total: int, lr: float = 0.01, batch: int = 128) -> float:
    """One epoch of the plain loop; returns seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = math.ceil(len(y_all) / batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps * epochs_total)
    g = torch.Generator().manual_seed(0)
    one, zero = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(y_all), generator=g)
    for i in range(steps):
        idx = order[i * batch : (i + 1) * batch]
        x = augment(x_all[idx], Augment(), zero, one, g)
        loss = F.cross_entropy(model(x), y_all[idx], label_smoothing=0.05)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - start


def run_recipe_measured(data: dict, epochs: int, out: Path, seed: int = 0) -> dict:
    recipe = {
        "name": "streaming-bench", "seed": seed, "data": data, "model": {"name": "tiny_cnn"},
        "stages": [{"train": {"epochs": epochs, "lr": 0.01}}, {"export": {}}, {"validate": {"runs": 100}}], "devices": ["host"],
    }
    done = runs.run(recipe, out, fresh=True, peak_rss=True)
    return {
        "seconds": round(done.seconds, 1), "peak_mb": int(done.peak_rss_mb),
        "train_peak_mb": done.metrics("train").get("peak_rss_mb"), "accuracy": done.report()["devices"]["host"]["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="Fashion-MNIST as PNGs (70 k)")
    parser.add_argument("small_folder", type=Path, help="the embedded set as PNGs (7 k)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-streaming"))
    parser.add_argument("--repeats", type=int, default=5, help="interleaved epochs of each data path for the throughput ratio")
    parser.add_argument("--throughput-only", action="store_true", help="measure the data paths only (part 1)")
    parser.add_argument("--accuracy-seeds", type=int, nargs="+", help="only compare test accuracy, IDX vs PNG folder, over these seeds")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.accuracy_seeds:
        compare_accuracy(args)
        return

    plain = DataLoader(PlainFolder(args.folder / "train"), batch_size=128, shuffle=True, num_workers=args.workers)
    data = load_data(DataConfig(source="image_folder", path=str(args.folder), workers=args.workers, val_fraction=0.1), seed=0)
    plain_rates, ours_rates = [], []
    for repeat in range(args.repeats):  # interleaved, the order alternating, so a slow spell slows both alike
        paths = [("plain", lambda: throughput(plain)), ("ours", lambda: throughput(data.train.batches(128, torch.randperm(len(data.train)))))]
        for name, measure in paths if repeat % 2 == 0 else paths[::-1]:
            (plain_rates if name == "plain" else ours_rates).append(measure())
    ratios = [o / p for o, p in zip(ours_rates, plain_rates)]
    print(f"| data path, one epoch of the training split ({args.repeats} interleaved repeats) | images/s, median | vs plain: median (min-max) |\n|---|---|---|")
    print(f"| plain DataLoader + Pillow, {args.workers} workers | {np.median(plain_rates):,.0f} | 1.00 |")
    print(f"| pipeline image_folder split, {args.workers} workers | {np.median(ours_rates):,.0f} | {np.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")
    if args.throughput_only:
        return

    arrays = load_data(DataConfig(source="fashion-mnist"), seed=0)
    x_all, y_all = arrays.train.dataset.x, arrays.train.dataset.y
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    plain_epoch(model, x_all[:2048], y_all[:2048], 1)  # warm-up
    plain_s = min(plain_epoch(build_model(ModelConfig(name="tiny_cnn"), 1, 10), x_all, y_all, 2) for _ in range(2))
    pipeline_s = []
    for _ in range(2):
        started = time.perf_counter()
        fit(build_model(ModelConfig(name="tiny_cnn"), 1, 10), arrays, TrainConfig(epochs=1, lr=0.01), device=torch.device("cpu"),
            generator=torch.Generator().manual_seed(0))
        pipeline_s.append(time.perf_counter() - started)
    print("\n| training loop, one epoch, tiny_cnn, 54 k in-memory images | seconds | vs plain |\n|---|---|---|")
    print(f"| plain loop (AdamW, one-cycle, flip + shift) | {plain_s:.1f} | 1.00 |")
    print(f"| pipeline `fit` (same, plus a validation pass) | {min(pipeline_s):.1f} | {min(pipeline_s) / plain_s:.2f} |")

    rows = {
        "Fashion-MNIST IDX arrays (70 k, in memory)": run_recipe_measured({"source": "fashion-mnist"}, args.epochs, args.out / "idx"),
        "Fashion-MNIST PNG folder (70 k, streamed)": run_recipe_measured({"source": "image_folder", "path": str(args.folder), "workers": args.workers}, args.epochs, args.out / "png"),
        "embedded PNG folder (7 k, streamed)": run_recipe_measured({"source": "image_folder", "path": str(args.small_folder), "workers": args.workers}, args.epochs, args.out / "png7k"),
    }
    print(f"\n| `compress run` (train {args.epochs} epochs, export, validate) | wall s | peak RSS MB (largest process) | train stage peak MB | test accuracy |\n|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['seconds']} | {r['peak_mb']} | {r['train_peak_mb']} | {r['accuracy']:.4f} |")


def compare_accuracy(args) -> None:
    import statistics

    sources = {"IDX arrays": {"source": "fashion-mnist"}, "PNG folder": {"source": "image_folder", "path": str(args.folder), "workers": args.workers}}
    accuracy = {name: [run_recipe_measured(data, args.epochs, args.out / f"acc-{i}", seed)["accuracy"] for seed in args.accuracy_seeds]
                for i, (name, data) in enumerate(sources.items())}
    print(f"| source (train {args.epochs} epochs, seeds {args.accuracy_seeds}) | test accuracy per seed | mean ± sd |\n|---|---|---|")
    for name, values in accuracy.items():
        print(f"| {name} | {', '.join(f'{v:.4f}' for v in values)} | {statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} |")


if __name__ == "__main__":
    main()
