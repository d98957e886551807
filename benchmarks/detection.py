"""Detection: the pipeline's recipe against a plain hand-written script of the same detector, at equal epochs.

    python benchmarks/detection.py                  # about 25 minutes alone on 2 cores
    python benchmarks/detection.py --epochs 2 --finetune 1 --train 300   # a smoke run

Data: Fashion-MNIST items composed into 96x96 scenes (`compress data scenes`, written once to
data/fashion-mnist-scenes: 4,000 train, 500 validation, 1,000 test scenes).

The pipeline runs `recipes/detection-scenes.yaml` (train E epochs, prune to half the MACs with F
epochs of fine-tuning, every runtime's file, INT8, validate). The plain script is what a competent
user writes for the same detector: its own Dataset (json + Pillow), the zoo's tiny_det and the same
FCOS loss, AdamW with a cosine schedule and random flips for E + F epochs, `torch.onnx.export`, and
onnxruntime's `quantize_static` with its defaults (MinMax, QDQ, 512 calibration scenes). Both are
scored by the same decoding and pycocotools on the test scenes, once, after training; latency is
onnxruntime at batch 1 on one thread, the two files timed in interleaved rounds, plus the numpy
post-processing (decode + NMS) per image.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "data" / "fashion-mnist-scenes"
RECIPE = ROOT / "recipes" / "detection-scenes.yaml"


def make_data(folder: Path, train: int) -> None:
    from pipeline.data import DataConfig
    from pipeline.data.registry import SOURCES
    from pipeline.data.scenes import write_scenes

    raw = SOURCES.get("fashion-mnist")(DataConfig(source="fashion-mnist"))
    write_scenes(folder, raw.x_train, raw.y_train, raw.x_test, raw.y_test, raw.class_names, {"train": train, "val": 500, "test": 1000}, canvas=96, seed=0)


# ---------------------------------------------------------------- the plain script (run in its own process)
def plain(data: Path, epochs: int, out: Path) -> dict:
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import CalibrationDataReader, quantize_static
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    from pipeline.models.detector import tiny_det
    from pipeline.tasks.coco_map import coco_stats
    from pipeline.tasks.detection_loss import detection_loss

    class Scenes(Dataset):
        def __init__(self, folder: Path, mean=None, std=None):
            doc = json.loads((folder / "instances.json").read_text())
            self.files = [folder / i["file_name"] for i in doc["images"]]
            boxes = {i["id"]: [] for i in doc["images"]}
            for a in doc["annotations"]:
                x, y, w, h = a["bbox"]
                boxes[a["image_id"]].append([a["category_id"], x, y, x + w, y + h])
            self.targets = [boxes[i["id"]] for i in doc["images"]]
            self.most = max(len(t) for t in self.targets)
            self.mean, self.std = mean, std

        def __len__(self):
            return len(self.files)

        def __getitem__(self, i):
            x = torch.from_numpy(np.asarray(Image.open(self.files[i]).convert("L"), dtype=np.float32) / 255)[None]
            y = torch.full((4, 5), -1.0)
            if self.targets[i]:
                y[: len(self.targets[i])] = torch.tensor(self.targets[i])
            return (x - self.mean) / self.std, y

    train = Scenes(data / "train", 0.0, 1.0)
    pixels = torch.stack([train[i][0] for i in range(0, len(train), 4)])
    mean, std = float(pixels.mean()), float(pixels.std())
    train, test = Scenes(data / "train", mean, std), Scenes(data / "test", mean, std)
    torch.manual_seed(0)
    model = tiny_det(1, 10)
    loader = DataLoader(train, batch_size=32, shuffle=True, num_workers=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            flip = torch.rand(len(x)) < 0.5  # horizontal flip, boxes with it
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            real = y[:, :, 0] >= 0
            flipped = y.clone()
            flipped[:, :, 1], flipped[:, :, 3] = 96 - y[:, :, 3], 96 - y[:, :, 1]
            y = torch.where((flip[:, None] & real)[:, :, None], flipped, y)
            loss = sum(detection_loss(model(x), y, (96, 96), 8).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        print(f"plain epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}", flush=True)
    train_seconds = time.perf_counter() - started
    model.eval()
    fp32, int8 = out / "plain.onnx", out / "plain.int8.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 96, 96), str(fp32), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False)
    calibration = [train[i][0][None].numpy() for i in range(512)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {"input": x}

    quantize_static(str(fp32), str(int8), Reader())
    x_test = np.stack([test[i][0].numpy() for i in range(len(test))])
    y_test = np.stack([test[i][1].numpy() for i in range(len(test))])
    figures = {"train_seconds": round(train_seconds, 1)}
    for name, path in (("fp32", fp32), ("int8", int8)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = np.concatenate([session.run(None, {"input": x_test[i : i + 100]})[0] for i in range(0, len(x_test), 100)])
        stats = coco_stats(outputs, y_test)
        figures[name] = {"map": round(float(stats[0]), 4), "map50": round(float(stats[1]), 4), "path": str(path)}
    return figures


# ---------------------------------------------------------------- the comparison
def latencies(files: dict[str, Path], sample: np.ndarray, rounds: int = 7) -> dict[str, dict]:
    from pipeline.runtime.onnx_files import measure_latencies

    timed = measure_latencies(files, sample, threads=1, warmup=20, runs=200, rounds=rounds)
    return {name: {"p50": t["p50"], "p90": t["p90"]} for name, t in timed.items()}


def decode_ms(path: Path, data: Path, floor: float) -> float:
    """Median numpy post-processing time per image on the model's outputs for 200 test scenes, at a
    score floor (COCO evaluation keeps down to 0.05 and up to 100 boxes; an app draws from ~0.3)."""
    import onnxruntime as ort

    from devices.on_device.detections import decode
    from pipeline.data import DataConfig, load_data

    split = load_data(DataConfig(source="coco", path=str(data), workers=0), 0).test
    x, _ = split.take(200)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    times = []
    for raw in outputs:
        started = time.perf_counter()
        decode(raw, score_floor=floor)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="the pipeline's training epochs (default: the recipe's)")
    parser.add_argument("--finetune", type=int, help="the pipeline's fine-tuning epochs after the cut (default: the recipe's)")
    parser.add_argument("--train", type=int, default=4000, help="training scenes, when the data is made")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--plain-only", type=Path, help=argparse.SUPPRESS)  # the plain script's own process
    args = parser.parse_args()
    import yaml

    recipe = yaml.safe_load(RECIPE.read_text())
    args.epochs = args.epochs or recipe["stages"][0]["train"]["epochs"]
    args.finetune = args.finetune or recipe["stages"][1]["prune"]["finetune"]["epochs"]
    if args.plain_only:
        print("RESULT " + json.dumps(plain(args.data, args.epochs + args.finetune, args.plain_only)))
        return
    if not args.data.exists():
        make_data(args.data, args.train)
    work = Path(tempfile.mkdtemp(prefix="detection-bench-"))
    recipe["data"]["path"] = str(args.data)
    recipe["stages"][0]["train"]["epochs"] = args.epochs
    recipe["stages"][1]["prune"]["finetune"]["epochs"] = args.finetune
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    run_dir = ROOT / "runs" / "detection-scenes"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(work / "recipe.yaml"), "--out", str(run_dir), "--fresh", "--quiet"], cwd=ROOT, check=True)
    pipeline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--plain-only", str(work), "--data", str(args.data), "--epochs", str(args.epochs), "--finetune", str(args.finetune)],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    plain_seconds = time.perf_counter() - started
    figures = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])

    report = json.loads((run_dir / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    rows = []
    for name in ("train", "prune", "export", "quantize"):
        m = json.loads((run_dir / stages[name]["folder"] / "metrics.json").read_text())
        val = m.get("val_accuracy")
        if val is None and name == "quantize":  # the INT8 file's validation figure is validate's
            val = next(e["val_accuracy"] for d in report["devices"].values() for n, e in d["choice"]["candidates"].items() if n == "onnx_int8")
        rows.append((name, val, m["accuracy"], m["params"], m["macs"]))
    from pipeline.data import DataConfig, load_data

    sample = load_data(DataConfig(source="coco", path=str(args.data), workers=0), 0).test.take(1)[0].numpy()
    files = {"pipeline fp32": run_dir / report["artifacts"]["onnx_fp32"], "pipeline int8": run_dir / report["artifacts"]["onnx_int8"],
             "plain fp32": Path(figures["fp32"]["path"]), "plain int8": Path(figures["int8"]["path"])}
    timed = latencies(files, sample)
    post = {name: (decode_ms(path, args.data, 0.05), decode_ms(path, args.data, 0.3)) for name, path in files.items()}
    print(f"\npipeline {pipeline_seconds:.0f} s, plain script {plain_seconds:.0f} s (ratio {pipeline_seconds / plain_seconds:.2f})")
    print("| stage | validation mAP | test mAP@0.5:0.95 | params | MACs |")
    print("|---|---|---|---|---|")
    for name, val, test, params, macs in rows:
        print(f"| {name} | {val if val is not None else '–'} | {test:.4f} | {params:,} | {macs / 1e6:.2f} M |")
    print(f"| plain FP32 ({args.epochs + args.finetune} epochs) | – | {figures['fp32']['map']:.4f} (mAP@0.5 {figures['fp32']['map50']:.4f}) | | |")
    print(f"| plain INT8 (quantize_static defaults) | – | {figures['int8']['map']:.4f} (mAP@0.5 {figures['int8']['map50']:.4f}) | | |")
    print("\n| file | p50 ms (ratio to plain fp32) | p90 ms | post-processing ms, score floor 0.05 / 0.3 |")
    print("|---|---|---|---|")
    base = timed["plain fp32"]["p50"]
    for name, t in timed.items():
        print(f"| {name} | {t['p50']:.3f} ({t['p50'] / base:.2f}x) | {t['p90']:.3f} | {post[name][0]:.3f} / {post[name][1]:.3f} |")
    files_seen = {n: e for d in report["devices"].values() for n, e in d["choice"]["candidates"].items()}
    print("\n| file (every runtime) | validation mAP | test mAP |\n|---|---|---|")
    for name, e in sorted(files_seen.items()):
        print(f"| {name} | {e['val_accuracy']:.4f} | {e['accuracy']:.4f} |")
    print("\ndevices:", json.dumps({d: {k: v[k] for k in ("artifact", "accuracy", "passed", "latency_kind")} | {"p90": v["latency_ms"]["p90"]}
                                    for d, v in report["devices"].items()}, indent=1))
    if math.isfinite(pipeline_seconds):
        (run_dir / "benchmark.json").write_text(json.dumps({"pipeline_seconds": pipeline_seconds, "plain_seconds": plain_seconds, "plain": figures,
                                                            "latency": timed, "post_ms": post}, indent=1))


if __name__ == "__main__":
    main()
