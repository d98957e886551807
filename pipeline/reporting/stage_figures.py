"""Every stage's model of a finished run, measured side by side: accuracy, params, MACs, ONNX size, latency.

Each row times the file the state after that stage would ship (validate's choice for the validate
stage; else INT8 if there is one, else FP32). Where a stage left no ONNX file (train, prune), its
`model.pt` is exported to a temporary FP32 file, so every row has a measured latency. Used by
`compress report` and `benchmarks/stage_table.py`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from exporters import export_onnx
from pipeline.core.checkpoints import load_model
from pipeline.data import load_data
from pipeline.models import build_model
from pipeline.recipe import RecipeHeader
from pipeline.runtime.onnx_files import measure_latency


def stage_rows(run_dir: Path, threads: list[int], runs: int = 200) -> list[dict]:
    """One row per finished stage; `latency[threads] = {p50, p90}` on this host, in ms."""
    report = json.loads((run_dir / "report.json").read_text())
    header = RecipeHeader.model_validate(json.loads((run_dir / "recipe.json").read_text()))
    data = load_data(header.data, header.seed)
    sample = data.test.x[:1].numpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stage in report["stages"]:
            folder = run_dir / stage["folder"]
            onnx_file = shipped_file(run_dir, stage)
            if onnx_file is None:
                model = build_model(header.model, data.input_shape[0], data.num_classes, load_checkpoint=False)
                load_model(model, folder / "model.pt")
                onnx_file = Path(tmp) / f"{stage['folder']}.onnx"
                export_onnx(model, onnx_file, data.test.x[:64])
            latency = {}
            for t in threads:
                measured = measure_latency(onnx_file, sample, t, warmup=20, runs=runs)
                latency[t] = {"p50": measured["p50"], "p90": measured["p90"]}
            m = stage["metrics"]
            rows.append({
                "stage": stage["folder"], "name": stage["name"], "seconds": stage["seconds"], "accuracy": m["accuracy"],
                "params": m["params"], "macs": m["macs"], "onnx_kib": onnx_file.stat().st_size / 1024, "latency": latency,
                "int8": "int8" in onnx_file.name,
            })
    return rows


def shipped_file(run_dir: Path, stage: dict) -> Path | None:
    artifacts = json.loads((run_dir / stage["folder"] / "state.json").read_text())["artifacts"]
    newest = artifacts.get("onnx_int8") or artifacts.get("onnx_fp32")
    if stage["name"] == "validate":  # the file most devices were given (latency-aware choice)
        chosen = json.loads((run_dir / stage["folder"] / "metrics.json").read_text()).get("artifact", "")
        newest = artifacts.get(chosen, newest)
    return run_dir / newest if newest else None
