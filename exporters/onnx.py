"""ONNX export with a parity check: a file that disagrees with PyTorch is refused, never shipped."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from exporters.parity import ExportResult, check_parity, torch_outputs
from exporters.runtime_exporter import RuntimeExporter

INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(
    module: nn.Module,
    path: Path,
    parity_inputs: torch.Tensor,
    metadata: dict[str, str] | None = None,
    *,
    opset: int = 17,
    max_abs_diff: float = 1e-3,
    min_top1_agreement: float = 0.99,
    output_names: list[str] = (OUTPUT_NAME,),
) -> ExportResult:
    """Export with a dynamic batch axis, run the ONNX checker, stamp metadata, compare with PyTorch.

    `parity_inputs` are real samples (not noise: noise can hide errors that only real
    activations reach). Raises `ParityError` and renames the file `*.rejected` on failure.
    A module returning a tuple needs one name per output; parity covers every output (top-1
    agreement on the 2-D ones, the logits).

    >>> export_onnx(model, Path("model.onnx"), x_test[:256], {"mean": "0.286"})  # doctest: +SKIP
    """
    module = module.eval().cpu()
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (parity_inputs[:2],),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(output_names),
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *output_names)},
        )
    onnx.checker.check_model(str(path), full_check=True)
    if metadata:
        set_metadata(path, metadata)
    got = onnx_outputs(path, parity_inputs.numpy())
    return check_parity(torch_outputs(module, parity_inputs), got, path, "onnxruntime", max_abs_diff, min_top1_agreement)


def set_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Write key/value strings into the model's metadata_props (read back by onnxruntime's modelmeta)."""
    model = onnx.load(str(path))
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            model.metadata_props.add(key=key, value=str(value))
    onnx.save(model, str(path))


def onnx_logits(path: Path, x: np.ndarray, batch_size: int = 256, threads: int = 0) -> np.ndarray:
    """Run the whole array through onnxruntime on the CPU in batches; the first output."""
    return onnx_outputs(path, x, batch_size, threads)[0]


def onnx_outputs(path: Path, x: np.ndarray, batch_size: int = 256, threads: int = 0) -> list[np.ndarray]:
    """Every output of the model for the whole array, in the graph's output order."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batches = [session.run(None, {name: x[i : i + batch_size]}) for i in range(0, len(x), batch_size)]
    return [np.concatenate(parts) for parts in zip(*batches)]


def extract_segment(path: Path, out: Path, inputs: list[str], outputs: list[str]) -> Path:
    """The part of the graph that computes `outputs` from `inputs` alone, as its own model.

    Early exits run as a cascade of segments, so a sample that leaves early never pays for the rest
    (onnxruntime runs the whole graph even when asked for one early output). Raises ValueError when
    the cut is not clean: something after it still needs a tensor from before it.
    """
    try:
        onnx.utils.extract_model(str(path), str(out), inputs, outputs, check_model=True)
    except Exception as e:  # onnx raises checker and key errors alike for a graph that does not close
        raise ValueError(f"cannot cut {path.name} between {inputs} and {outputs}: {str(e).splitlines()[0]}") from None
    return out


EXPORTER = RuntimeExporter("onnxruntime", None, int8="the quantize stage's route")  # the export stage makes its file with export_onnx
