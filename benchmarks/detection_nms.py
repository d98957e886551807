"""A detector's post-processing two ways: numpy after the model, or ONNX NonMaxSuppression in the graph.

    python benchmarks/detection.py          # first: trains the detector into runs/detection-scenes
    python benchmarks/detection_nms.py      # then this, about 2 minutes alone on 2 cores

The files are the FP32 and onnxruntime INT8 detectors that `benchmarks/detection.py` made (its
pipeline run, `recipes/detection-scenes.yaml`). For each, `compress nms` writes the same file with
scores, score floor and class-wise NMS in the graph. Both ways are scored by pycocotools on the
1,000 test scenes (score floor 0.05, COCO's setting) and timed per image at batch 1 on one thread:
the model and its post-processing, onnxruntime in both, numpy after it in one. The two ways are
timed in interleaved rounds (ROUNDS x IMAGES images each); a figure is the median of the rounds'
per-image medians, the ratio the median of the rounds' ratios with its range.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN = ROOT / "runs" / "detection-scenes"
FLOORS = (0.05, 0.3)  # COCO's (what mAP needs) and an app's (what it shows)


def per_image_ms(run_one, images: np.ndarray) -> float:
    times = []
    for image in images:
        start = time.perf_counter()
        run_one(image[None])
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()

    from devices.on_device import coco_eval, detections
    from devices.on_device.runtimes import open_runner
    from pipeline.data import DataConfig, load_data

    if not (args.run / "report.json").is_file():
        sys.exit(f"{args.run}: no finished detection run; run `python benchmarks/detection.py` first")
    recipe = json.loads((args.run / "recipe.json").read_text())
    test = load_data(DataConfig.model_validate(recipe["data"]), recipe["seed"]).test
    x, targets = test.take(len(test))[:2]
    x, targets = np.ascontiguousarray(x.numpy(), dtype=np.float32), targets.numpy()
    files = {"FP32": args.run / "03-export/model.onnx", "ORT INT8": args.run / "04-quantize/model.int8.onnx"}
    rows = []
    for label, source in files.items():
        for floor in FLOORS:
            target = Path(f"/tmp/detection-nms-{label.replace(' ', '-')}-{floor}.onnx")
            subprocess.run([sys.executable, "-m", "pipeline", "nms", str(source), "-o", str(target), "--score-floor", str(floor)], check=True, cwd=ROOT)
            raw, graph = open_runner(source, threads=1), open_runner(target, threads=1)
            numpy_way = lambda batch: [detections.decode(r, score_floor=floor) for r in raw(batch)[0]]  # noqa: E731
            graph_way = lambda batch: detections.from_graph(*graph(batch), len(batch))  # noqa: E731
            maps = {}
            if floor == FLOORS[0]:
                maps = {"numpy": coco_eval.stats([d for i in range(0, len(x), 100) for d in numpy_way(x[i:i + 100])], targets)[0],
                        "graph": coco_eval.stats([d for i in range(0, len(x), 100) for d in graph_way(x[i:i + 100])], targets)[0]}
            timed = {"numpy": [], "graph": []}
            for r in range(args.rounds):
                images = x[(r * args.images) % len(x):][: args.images]
                for way, fn in (("numpy", numpy_way), ("graph", graph_way))[:: 1 if r % 2 == 0 else -1]:  # interleaved, order alternating
                    timed[way].append(per_image_ms(fn, images))
            ratios = np.array(timed["graph"]) / np.array(timed["numpy"])
            rows.append({"file": label, "floor": floor, "map": maps, "numpy_ms": float(np.median(timed["numpy"])),
                         "graph_ms": float(np.median(timed["graph"])), "ratio": float(np.median(ratios)),
                         "ratio_range": [float(ratios.min()), float(ratios.max())]})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| file | score floor | test mAP, numpy NMS | test mAP, graph NMS | numpy: ms per image | graph: ms per image (ratio to numpy, range) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        maps = row["map"]
        cells = [f"{maps['numpy']:.4f}", f"{maps['graph']:.4f}"] if maps else ["–", "–"]
        print(f"| {row['file']} | {row['floor']} | {cells[0]} | {cells[1]} | {row['numpy_ms']:.3f} | "
              f"{row['graph_ms']:.3f} ({row['ratio']:.2f}x, {row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}) |")


if __name__ == "__main__":
    main()
