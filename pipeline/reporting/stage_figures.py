"""Every stage's model of a finished run, measured side by side: accuracy, params, MACs, ONNX size, latency.

Each row times the file the state after that stage would ship (validate's choice for the validate
stage; else INT8 if there is one, else FP32). Where a stage left no ONNX file (train, prune), its
`model.pt` is exported to a temporary FP32 file, so every row has a measured latency. Used by
`compress report` and `benchmarks/stage_table.py`.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from exporters import export_onnx
from pipeline.core.checkpoints import load_model
from pipeline.core.run_folder import RunFolder, StageFolder
from pipeline.data import DataConfig, load_data
from pipeline.models import ModelConfig, build_model
from pipeline.runtime.onnx_files import measure_latency


def stage_rows(run_dir: Path, threads: list[int], runs: int = 200) -> list[dict]:
    """One row per finished stage; `latency[threads] = {p50, p90}` on this host, in ms."""
    run = RunFolder(run_dir)
    report, header = run.report(), run.recipe_header()
    run.verify(report)
    data = load_data(DataConfig.model_validate(header["data"]), header["seed"])
    model_config = ModelConfig.model_validate(header["model"])
    sample = data.test.take(1)[0].numpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for stage in report["stages"]:
            folder = run.stage_named(stage["folder"])
            onnx_file = shipped_file(run, folder)
            if onnx_file is None:
                model = build_model(model_config, data.input_shape[0], data.num_classes, load_checkpoint=False)
                load_model(model, folder.model_file)
                onnx_file = Path(tmp) / f"{stage['folder']}.onnx"
                export_onnx(model, onnx_file, data.test.take(64)[0])
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


def shipped_file(run: RunFolder, folder: StageFolder) -> Path | None:
    """The file the state after this stage ships: once devices were judged, the one most of them
    were given (latency-aware choice); before that INT8 if there is one, else FP32."""
    saved = folder.saved_state()
    artifacts = saved["artifacts"]
    newest = artifacts.get("onnx_int8") or artifacts.get("onnx_fp32")
    given = Counter(d.get("artifact") for d in (saved.get("devices") or {}).values()).most_common(1)
    if given and given[0][0] in artifacts:
        newest = artifacts[given[0][0]]
    return run.resolve(newest) if newest else None
