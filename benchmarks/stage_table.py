"""Per-stage figures of a finished run, side by side: accuracy, params, MACs, ONNX size, host latency.

Each row times the file the state after that stage would ship (INT8 if there is one, else FP32, as
in `validate`); where a stage left no valid ONNX file (train, prune), its model.pt is exported here
to a temporary FP32 file so that every row has a measured latency.

    python benchmarks/stage_table.py runs/quickstart [--threads 1 --runs 500]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from exporters import export_onnx
from pipeline.checkpoints import load_model
from pipeline.data import load_data
from pipeline.models import build_model
from pipeline.onnx_runtime import measure_latency
from pipeline.recipe import RecipeHeader


def stage_rows(run_dir: Path, threads: int, runs: int) -> list[dict]:
    report = json.loads((run_dir / "report.json").read_text())
    header = RecipeHeader.model_validate(json.loads((run_dir / "recipe.json").read_text()))
    data = load_data(header.data, header.seed)
    sample = data.test.x[:1].numpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stage in report["stages"]:
            folder = run_dir / stage["folder"]
            artifacts = json.loads((folder / "state.json").read_text())["artifacts"]
            newest = artifacts.get("onnx_int8") or artifacts.get("onnx_fp32")
            if stage["name"] == "validate":  # the file most devices were given (latency-aware choice)
                chosen = json.loads((folder / "metrics.json").read_text()).get("artifact", "")
                shipped = artifacts.get(chosen, newest)
            else:
                shipped = newest
            onnx_file = run_dir / shipped if shipped else None
            if onnx_file is None:
                model = build_model(header.model, data.input_shape[0], data.num_classes, load_checkpoint=False)
                load_model(model, folder / "model.pt")
                onnx_file = Path(tmp) / f"{stage['folder']}.onnx"
                export_onnx(model, onnx_file, data.test.x[:64])
            latency = measure_latency(onnx_file, sample, threads, warmup=50, runs=runs)
            m = stage["metrics"]
            rows.append({
                "stage": stage["folder"], "seconds": stage["seconds"], "accuracy": m["accuracy"], "params": m["params"],
                "macs": m["macs"], "onnx_kib": onnx_file.stat().st_size / 1024, "p50_ms": latency["p50"], "p90_ms": latency["p90"],
                "int8": "int8" in onnx_file.name,
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = stage_rows(args.run_dir, args.threads, args.runs)
    print("| stage | seconds | test acc | params | MACs | ONNX KiB | p50 ms | p90 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        kind = " (INT8)" if r["int8"] else ""
        print(
            f"| {r['stage']}{kind} | {r['seconds']:.1f} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | "
            f"{r['onnx_kib']:.1f} | {r['p50_ms']:.4f} | {r['p90_ms']:.4f} |"
        )


if __name__ == "__main__":
    main()
