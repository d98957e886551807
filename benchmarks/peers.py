"""The pipeline against what a user writes by hand, on the same data, at equal epochs, in one run.

The peer is plain PyTorch + Torch-Pruning + onnxruntime, written the way a user would (the
`peer_*` functions below, ~60 lines, nothing from `pipeline/`): train with AdamW, one-cycle (25 %
warm-up), batch 128, random flip + a shift of up to 2 px drawn per image, label smoothing 0.05 on all
60 k training images;
prune once with Torch-Pruning (`GroupMagnitudeImportance(p=2)`, per layer, the classifier ignored,
the per-layer ratio that would keep the asked share of MACs); fine-tune with cross-entropy; static
INT8 with onnxruntime at the pipeline's settings (per-channel weight scales, 7-bit weights). The pipeline runs `compress run` on a recipe with the same model, optimiser,
training learning rate and the same total epochs, pruned to the MACs the peer reached (`keep_macs`);
how it spends those epochs (where it cuts, its rounds, recovery and learning rate: `CASES`) is its
own, chosen on the validation split. Then export, static INT8, validate. Both sides' files are
measured by the same onnxruntime harness: test accuracy on the 10 k test split, and batch-1 p50 latency on one thread with all files timed in interleaved
rounds (a burst of host noise slows them alike). Final epochs are reported on both sides: nothing
is selected on the test split.

    python benchmarks/peers.py [--case tiny_cnn|resnet20] [--seed 0] [--train-on-validation] [--epochs N --finetune N]

`--epochs`/`--finetune` shorten both sides alike, the pipeline cutting where the script does: a quick
check of the loops' time per epoch, whose accuracies are not the cases' figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
import torch_pruning as tp
from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

from pipeline.models import (  # the same architecture on both sides
    ModelConfig,
    build_model,
)
from pipeline.runtime.onnx_files import HOST_THREADS, measure_latencies

import runs  # benchmarks/runs.py, beside this script

MEAN, STD = 0.2860, 0.3530

# What each side runs. The peer's settings are the hand-written script's; `pipeline_prune` is the
# pipeline's own way to spend the same recovery epochs (rounds, distillation, learning rate), chosen
# on the validation split in earlier runs (docs/benchmarks.md, fashion-mnist-8m-macs attempts).
CASES = {
    "tiny_cnn": {
        "epochs": 8, "lr": 0.01, "keep_macs": 0.5, "finetune": 4, "finetune_lr": 0.003,
        "pipeline_prune": {"steps": 2, "recovery": "finetune", "lr": 0.003},
    },
    "resnet20": {  # the plain script that reached 93.50 % / 92.74 % pruned to 6.8 M MACs
        "epochs": 10, "lr": 4e-3, "keep_macs": 6.8 / 31.48, "finetune": 5, "finetune_lr": 2e-3,
        "pipeline_prune": {"steps": 1, "recovery": "finetune", "lr": 2e-3},  # the validation winner of benchmarks/prune_recovery.py
        "pipeline_cut_after": 5,  # of the 15 epochs, 5 before the cut and 10 after: the validation winner of benchmarks/prune_split.py
    },
}


def peer_data(root: Path):
    def idx(name: str) -> np.ndarray:
        raw = gzip.open(root / name).read()
        return np.frombuffer(raw, np.uint8, offset=16 if "images" in name else 8)

    def images(name: str) -> torch.Tensor:
        return ((torch.from_numpy(idx(name).reshape(-1, 1, 28, 28).copy()).float() / 255) - MEAN) / STD

    return (images("train-images-idx3-ubyte.gz"), torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64)),
            images("t10k-images-idx3-ubyte.gz"), torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)))


def peer_augment(x: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2), value=-MEAN / STD)  # shifted-in pixels are black, as the pipeline's
    n, steps = len(x), torch.arange(28, device=x.device)
    dy, dx = torch.randint(0, 5, (2, n, 1), device=x.device)  # one shift per image, up to 2 px each way
    rows, cols = (dy + steps).view(n, 1, 28, 1), (dx + steps).view(n, 1, 1, 28)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1, 1), 0, rows, cols].view(n, 1, 28, 28)


def peer_train(model, x, y, epochs: int, lr: float, batch: int = 128) -> None:
    """Trains where `x` is (CPU here; benchmarks/prune_split.py passes GPU tensors and a GPU model)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = math.ceil(len(y) / batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps * epochs, pct_start=0.25)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), device=y.device)
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(model(peer_augment(x[idx])), y[idx], label_smoothing=0.05)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()


def peer_prune(model, keep_macs: float) -> None:
    example = torch.zeros(1, 1, 28, 28, device=next(model.parameters()).device)
    ratio = 1 - math.sqrt(keep_macs)  # MACs of a conv scale with in x out channels
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=[model.fc])
    pruner.step()


def peer_export(model, path: Path) -> None:
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)


def peer_int8(fp32: Path, out: Path, calibration: torch.Tensor) -> None:
    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": calibration[i : i + 64].numpy()} for i in range(0, len(calibration), 64)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader(), weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    per_channel=True, reduce_range=True)  # the pipeline's defaults: per-channel scales, 7-bit weights


def onnx_test_accuracy(path: Path, x: torch.Tensor, y: torch.Tensor) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {name: x[i : i + 512].numpy()})[0] for i in range(0, len(x), 512)])
    return float((logits.argmax(1) == y.numpy()).mean())


def figures(path: Path, model, x_test, y_test) -> dict:
    """Accuracy and size now; latency at the end, every file interleaved (`add_latencies`)."""
    macs, params = tp.utils.count_ops_and_params(model.eval(), torch.zeros(1, 1, 28, 28))
    return {"accuracy": onnx_test_accuracy(path, x_test, y_test), "params": int(params), "macs": int(macs),
            "kib": path.stat().st_size / 1024, "path": path}


def add_latencies(rows: list[dict], sample: np.ndarray) -> None:
    timed = measure_latencies({i: r["path"] for i, r in enumerate(rows)}, sample, HOST_THREADS, warmup=50, runs=1000, rounds=20)
    for i, r in enumerate(rows):
        r["p50_ms"] = timed[i]["p50"]


def run_peer(args, case: dict, data_root: Path, work: Path) -> list[dict]:
    x, y, x_test, y_test = peer_data(data_root)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = build_model(ModelConfig(name=args.case), 1, 10)
    started = time.perf_counter()
    peer_train(model, x, y, case["epochs"], lr=case["lr"])
    trained_s = time.perf_counter() - started
    peer_export(model, work / "peer.onnx")
    rows = [{"who": "by hand", "file": "trained, FP32", "seconds": trained_s, "epoch_s": trained_s / case["epochs"], **figures(work / "peer.onnx", model, x_test, y_test)}]
    started = time.perf_counter()
    peer_prune(model, case["keep_macs"])
    peer_train(model, x, y, case["finetune"], lr=case["finetune_lr"])
    peer_export(model, work / "peer-pruned.onnx")
    peer_int8(work / "peer-pruned.onnx", work / "peer-pruned.int8.onnx", x[:1024])
    pruned_s = time.perf_counter() - started
    rows.append({"who": "by hand", "file": "pruned, FP32", "seconds": pruned_s, **figures(work / "peer-pruned.onnx", model, x_test, y_test)})
    rows.append({"who": "by hand", "file": "pruned, INT8", "seconds": None, **figures(work / "peer-pruned.int8.onnx", model, x_test, y_test)})
    return rows


def run_pipeline(args, case: dict, keep_macs: float, work: Path) -> list[dict]:
    from pipeline.core.checkpoints import load_model

    prune = dict(case["pipeline_prune"])
    steps, lr = prune["steps"], prune.pop("lr")
    epochs = case.get("pipeline_cut_after", case["epochs"])
    recovery = case["epochs"] + case["finetune"] - epochs  # equal total epochs on both sides
    recipe = {
        "name": "peer-match", "seed": args.seed, "data": {"source": "fashion-mnist", "train_on_validation": args.train_on_validation},
        "model": {"name": args.case},
        "stages": [
            {"train": {"epochs": epochs, "lr": case["lr"]}},
            {"prune": {"target": {"keep_macs": keep_macs}, **prune, "finetune": {"epochs": recovery // steps, "lr": lr}}},
            {"export": {}}, {"quantize": {"calibration_samples": 1024}}, {"validate": {}},
        ],
        "devices": ["host"],
    }
    done = runs.run(recipe, work / "run")
    _, _, x_test, y_test = peer_data(Path(args.data))
    meta = {p.key: p.value for p in onnx.load(str(done.file("export", "model.onnx"))).metadata_props}
    norm = json.loads(meta["preprocessing"])  # the pipeline normalises with its training split's own mean and std
    x_test = (x_test * STD + MEAN - norm["mean"][0]) / norm["std"][0]
    trained = load_model(build_model(ModelConfig(name=args.case), 1, 10), done.file("train", "model.pt"))
    pruned = load_model(build_model(ModelConfig(name=args.case), 1, 10), done.file("prune", "model.pt"))
    peer_export(trained, work / "pipeline-trained.onnx")  # the stage exports only the final model; same exporter as the peer's
    history = done.metrics("train")["history"]
    loop = {"epoch_s": np.mean([h["train_seconds"] for h in history]), "val_s": np.mean([h["val_seconds"] for h in history])}
    return [
        {"who": "pipeline", "file": "trained, FP32", "seconds": done.stage_seconds("train"), **loop, **figures(work / "pipeline-trained.onnx", trained, x_test, y_test)},
        {"who": "pipeline", "file": "pruned, FP32", "seconds": done.stage_seconds("prune", "export", "quantize"),
         **figures(done.file("export", "model.onnx"), pruned, x_test, y_test)},
        {"who": "pipeline", "file": "pruned, INT8", "seconds": None, **figures(done.file("quantize", "model.int8.onnx"), pruned, x_test, y_test)},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="tiny_cnn", help="the model and both sides' settings (CASES)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-on-validation", action="store_true",
                        help="the pipeline also trains on its validation split (all 60 k images, as the script), its choices made before")
    parser.add_argument("--epochs", type=int, help="training epochs on both sides (default: the case's)")
    parser.add_argument("--finetune", type=int, help="recovery epochs after the cut on both sides (default: the case's)")
    parser.add_argument("--data", default=os.environ.get("COMPRESS_DATA", "/usr/share/datasets/fashion-mnist"))
    args = parser.parse_args()
    case = dict(CASES[args.case])
    case.update({k: v for k, v in (("epochs", args.epochs), ("finetune", args.finetune)) if v is not None})
    if args.epochs or args.finetune:
        case.pop("pipeline_cut_after", None)
    with tempfile.TemporaryDirectory() as tmp:
        peer = run_peer(args, case, Path(args.data), Path(tmp))
        keep = peer[1]["macs"] / peer[0]["macs"]  # the pipeline prunes to the MACs the peer reached
        rows = peer + run_pipeline(args, case, keep, Path(tmp))
        add_latencies(rows, peer_data(Path(args.data))[2][:1].numpy())
    print(f"case {args.case}, seed {args.seed}: {json.dumps(case)}; pipeline keep_macs {keep:.4f}, train_on_validation {args.train_on_validation}")
    print("| who | file | test acc | params | MACs | ONNX KiB | p50 ms | wall s (vs by hand) |\n|---|---|---|---|---|---|---|---|")
    peer = {r["file"]: r for r in rows if r["who"] == "by hand"}
    for r in rows:
        wall = "" if r["seconds"] is None else f"{r['seconds']:.0f} ({r['seconds'] / peer[r['file']]['seconds']:.2f}x)"
        print(f"| {r['who']} | {r['file']} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | {r['kib']:.1f} | {r['p50_ms']:.4f} | {wall} |")
    mine = next(r for r in rows if r["who"] == "pipeline" and r["file"] == "trained, FP32")
    theirs = peer["trained, FP32"]["epoch_s"]
    print(f"\ntraining loop, seconds per epoch: by hand {theirs:.1f}; pipeline {mine['epoch_s']:.1f} ({mine['epoch_s'] / theirs:.2f}x), "
          f"plus {mine['val_s']:.1f} s scoring the validation split after each epoch, which the script does not do")
    total = {who: sum(r["seconds"] for r in rows if r["who"] == who and r["seconds"] is not None) for who in ("by hand", "pipeline")}
    print(f"whole job, train + prune + INT8: by hand {total['by hand']:.0f} s; pipeline {total['pipeline']:.0f} s ({total['pipeline'] / total['by hand']:.2f}x)")


if __name__ == "__main__":
    main()
