"""`compress validate MODEL.onnx` / `compress bench MODEL.onnx`: judge a model made elsewhere.

The file is checked (a loadable ONNX model with one image input [N, C, H, W]), copied into an output
folder and measured the way a run's `validate` stage measures its files: size, gzip size, one-thread
host latency scaled per device, peak memory, and with data the test accuracy. The folder then holds
the same `report.json` (and `recipe.json` with the data, so `compress bundle` works from it), which
`compress gate` judges with its usual exit codes.

A detector (`task="detection"`, or data that gives boxes) is judged as a run judges one: its first
output [N, A, 5 + K] is checked against the data's classes, scored by COCO mAP, timed with its
post-processing, and held to the `min_map` / `max_map_drop` budgets.

Accuracy needs the model's own preprocessing: `mean`/`std` given, or read from the file's
`preprocessing` metadata (files exported by this tool carry it). An accuracy budget without data,
or an accuracy-drop budget without `reference_accuracy`, cannot be judged: the gate says so (exit 2).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from pydantic import ValidationError

from devices.on_device import runtimes
from devices.on_device.bundle_files import sha256
from pipeline.core.config_errors import format_validation_error
from pipeline.core.errors import UserError
from pipeline.core.metrics import metric_label, resolve
from pipeline.core.run_folder import RunFolder
from pipeline.data import DataConfig, load_data
from pipeline.boards.board_timing import measure_on_boards
from pipeline.deploy.device_figures import Variant, judge_devices, measure
from pipeline.deploy.profiles import load_profile
from pipeline.reporting.report_json import build_report, environment
from pipeline.quantization.int8_checks import coverage
from pipeline.tasks import TASKS, Task
from pipeline.tasks.base import check_labels, task_for_targets
from pipeline.runtime.onnx_files import onnx_accuracy, optimized_nodes

log = logging.getLogger("compress")


@dataclass(frozen=True)
class DataSpec:
    """Test data as a command line gives it: `source[:path]` and the options, all as typed."""

    source: str
    input_size: int | None = None
    mean: str | None = None  # comma-separated, one per channel
    std: str | None = None
    test_subset: int | None = None


def data_config(spec: DataSpec) -> DataConfig:
    """A validated `DataConfig`, or one paragraph naming the option at fault."""
    source, _, path = spec.source.partition(":")
    raw = {"source": source, "path": path or None, "input_size": spec.input_size, "test_subset": spec.test_subset}
    try:
        for name in ("mean", "std"):
            text = getattr(spec, name)
            raw[name] = None if text is None else [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--mean/--std: give comma-separated numbers, one per channel (got {spec.mean!r} / {spec.std!r})") from None
    try:
        return DataConfig.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as e:
        raise UserError(f"--data {spec.source}:\n{format_validation_error(e, DataConfig)}") from None


def input_shape(path: Path) -> tuple[int, int, int]:
    """The model's image input as (C, H, W); a clear error for anything else."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001  onnx raises many types for a bad file
        raise UserError(f"{path} is not a valid ONNX model: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); an image classifier takes one [N, C, H, W] input")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or None in dims[1:]:
        raise UserError(f"{path}: input {inputs[0].name} has shape {dims}; expected [N, C, H, W] with fixed C, H and W")
    if dims[0] not in (None, 0, 1):
        raise UserError(
            f"{path}: input {inputs[0].name} has its batch fixed at {dims[0]}, but latency is measured at batch 1 on the device; "
            f"export with a dynamic batch (torch.onnx.export(..., dynamic_axes={{'{inputs[0].name}': {{0: 'batch'}}}})) or with batch 1"
        )
    return tuple(dims[1:])


def check_classes(path: Path, sample: np.ndarray, class_names: list[str], task: Task) -> None:
    """The file's first output must score each of the data's classes (a detector: per location, a box,
    a centre-ness and the classes): a 1000-class file judged on 10-class data would be scored, and its
    accuracy would mean nothing."""
    outputs = runtimes.open_runner(path, threads=1)(np.ascontiguousarray(sample[:1], dtype=np.float32))
    rank = 3 if task.targets == "boxes" else 2  # [N, A, 5 + K] or [N, K]
    width = outputs[0].shape[-1] if outputs and outputs[0].ndim == rank else None
    if width != task.prediction_outputs(len(class_names)):
        what = "values per location (4 box, 1 centre-ness, one per class)" if rank == 3 else "class score(s) per image"
        raise UserError(
            f"{path.name} gives {width if width is not None else 'no'} {what} (its first output is "
            f"{list(outputs[0].shape) if outputs else 'missing'}), but a {task.name} model for the data's {len(class_names)} classes "
            f"({', '.join(class_names[:5])}{', …' if len(class_names) > 5 else ''}) gives {task.prediction_outputs(len(class_names))}; "
            "judge it on the data it was trained for, with the task it was trained for (--task)"
        )


def task_of(given: str | None, targets: str | None) -> Task:
    """The task named, else the one the data's labels imply, else classification; refused when the
    data's labels do not fit the task named."""
    task = TASKS.get(given or (task_for_targets(targets) if targets else "classification"))
    if targets is not None:
        check_labels(task, targets, "--data")
    return task


def preprocessing_of(path: Path) -> dict | None:
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    try:
        return json.loads(meta["preprocessing"]) if "preprocessing" in meta else None
    except json.JSONDecodeError:
        return None


def validate_file(
    model: Path, devices: list[str], out: Path, data: DataConfig | None = None, reference_accuracy: float | None = None,
    warmup: int = 20, runs: int = 200, seed: int = 0, metric: str | None = None, on_boards: bool = True, task: str | None = None,
) -> dict:
    """Measure `model` for each device into `out`; returns the report (also out/report.json). Where a
    profile names a real board, the file is timed there (`on_boards`), as the validate stage does.
    `metric` defaults to the task's (top1, coco_map); `task` to what the data's labels imply."""
    model = Path(model)
    if metric is not None:
        resolve(metric)  # an unknown metric or task is refused before anything is read or written
    if task is not None:
        TASKS.get(task)
    if not model.is_file():
        raise UserError(f"{model}: no such file")
    shape = input_shape(model)
    profiles = [load_profile(d) for d in devices]
    run = RunFolder(out)
    run.ensure_writable()
    with run.lock():
        folder = run.path / "model"
        folder.mkdir(exist_ok=True)
        copy = folder / model.name
        shutil.copyfile(model, copy)
        name = "onnx_int8" if coverage(optimized_nodes(copy))["int8_compute_ops"] else "onnx_fp32"
        accuracy, sample, splits = None, np.zeros((1, *shape), dtype=np.float32), None
        if data is not None:
            data = with_preprocessing(data, copy)  # recipe.json keeps it: a bundle made from this folder normalises alike
            splits = load_data(data, seed)
        judged_as = task_of(task, splits.targets if splits else None)
        metric = metric or judged_as.metric
        if splits is not None:
            if tuple(splits.input_shape) != shape:
                raise UserError(f"the data's images are {list(splits.input_shape)} (C,H,W) but {model.name} takes {list(shape)}; set data.input_size or pick matching data")
            sample = splits.test.take(1)[0].numpy()
            check_classes(copy, sample, splits.class_names, judged_as)
            accuracy = onnx_accuracy(copy, splits.test, metric=resolve(metric))
        drop = None if accuracy is None or reference_accuracy is None else (reference_accuracy - accuracy) * 100
        variant = Variant(name, copy, accuracy, drop)
        measure([variant], sample, profiles, warmup, runs)
        if on_boards:
            measure_on_boards([variant], sample, profiles, warmup, runs)
        judged = judge_devices([variant], profiles, {}, log, judged_as.name, metric_label(metric))
        ref = str(copy.relative_to(run.path))
        report = build_report(
            {"name": f"validate {model.name}", "sha256": sha256(model), "metric": metric, "task": judged_as.name}, [], {name: ref}, run.artifact_hashes({name: ref}),
            {"accuracy": reference_accuracy, "source": "given"} if reference_accuracy is not None else {}, judged, environment(),
        )
        run.write_recipe_header({"seed": seed, "data": None if data is None else data.model_dump(mode="json"), "devices": devices, "task": judged_as.name})
        run.write_report(report)
    return report


def with_preprocessing(data: DataConfig, model: Path) -> DataConfig:
    """The data normalised the way the model expects: the given mean/std, else the file's metadata."""
    if data.mean is not None:
        return data
    given = preprocessing_of(model)
    if not given or "mean" not in given or "std" not in given:
        raise UserError(
            f"{model.name} carries no preprocessing metadata, so its input normalisation is unknown: give --mean and --std "
            "(per channel, on pixels scaled to 0..1), as the model was trained"
        )
    as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731  (older files: one value for all channels)
    return data.model_copy(update={"mean": as_list(given["mean"]), "std": as_list(given["std"])})
