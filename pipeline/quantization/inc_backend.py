"""neural-compressor (Intel Neural Compressor 3.x, torch API) as a quantization back end.

Its torch path quantizes through torch.export and pt2e: `export` -> `prepare` -> calibrate ->
`convert`, and `autotune` walks a list of configs with an evaluation function until one is within
the tolerated loss. Here the evaluation function scores the *exported ONNX file in onnxruntime*, so
the tuner judges what ships. The result is exported with the dynamo exporter (the only one that
takes a pt2e model) and its weights are folded by onnxruntime's basic offline optimisation (`convert`
leaves them as float + quantize ops). Measured limits (`shared/notes/int8-routes.md`): onnxruntime
keeps several convs of a residual network in FP32 on this route, and symmetric activations stop
the ReLU fusion; the stage's coverage check and `validate`'s latency-aware choice catch both.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from exporters import INPUT_NAME, OUTPUT_NAME
from pipeline.core.errors import StageError

INSTALL_HINT = "pip install 'edge-compress[neural-compressor]' (or: pip install neural-compressor-pt==3.10)"
ACT_ALGO = {"minmax": "minmax", "entropy": "kl"}  # neural-compressor has no percentile calibration
EXAMPLE_BATCH = 8  # torch.export needs a batch > 1 to keep the batch dimension dynamic


@contextlib.contextmanager
def _quiet():
    """neural-compressor logs every pass at INFO and warns at import; keep the pipeline's output readable."""
    previous = os.environ.get("LOGLEVEL")
    os.environ["LOGLEVEL"] = "ERROR"
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" from the dynamo exporter
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if previous is None:
            os.environ.pop("LOGLEVEL", None)
        else:
            os.environ["LOGLEVEL"] = previous
        logging.getLogger("neural_compressor").setLevel(logging.ERROR)


def api():
    """The neural-compressor torch API, or a StageError that says how to install it."""
    try:
        with _quiet():
            import neural_compressor.torch.quantization as quantization
            from neural_compressor.torch.export import export
    except ImportError as e:
        raise StageError(f"quantize.backend neural-compressor is not installed ({e}); {INSTALL_HINT}") from None
    logging.getLogger("neural_compressor").setLevel(logging.ERROR)
    return quantization, export


def static_config(calibration: str, per_channel: bool, activations: str):
    quantization, _ = api()
    return quantization.StaticQuantConfig(
        act_algo=ACT_ALGO[calibration],
        act_sym=activations == "symmetric",
        w_granularity="per_channel" if per_channel else "per_tensor",
    )


def describe(config) -> str:
    return f"neural-compressor pt2e static, act_algo {config.act_algo}, act_sym {config.act_sym}, weights {config.w_granularity}"


def _batch_dim():
    return ({0: torch.export.Dim("batch", min=1, max=4096)},)


def exported(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """The float model as a torch.export graph, which neural-compressor's static path starts from."""
    _, export = api()
    with _quiet():
        return export(copy.deepcopy(model).cpu().eval(), (torch.zeros(EXAMPLE_BATCH, *input_shape),), dynamic_shapes=_batch_dim())


def _copy(graph: nn.Module) -> nn.Module:
    """A deep copy that keeps the attributes neural-compressor's export attached (deepcopy drops them)."""
    copied = copy.deepcopy(graph)
    for name in ("_exported", "dynamic_shapes"):
        if hasattr(graph, name):
            setattr(copied, name, getattr(graph, name))
    return copied


def calibrate(samples: np.ndarray, tick: Callable[[int], None] = lambda _n: None) -> Callable[[nn.Module], None]:
    def run(model: nn.Module) -> None:
        with torch.no_grad():
            for start in range(0, len(samples), 32):
                model(torch.from_numpy(samples[start : start + 32]))
                tick(len(samples[start : start + 32]))

    return run


def quantize(graph: nn.Module, config, run_calibration: Callable[[nn.Module], None]) -> nn.Module:
    quantization, _ = api()
    with _quiet():
        prepared = quantization.prepare(_copy(graph), config)
        run_calibration(prepared)
        return quantization.convert(prepared)


def export_folded(model: nn.Module, input_shape: tuple[int, ...], out: Path) -> Path:
    """Dynamo ONNX export, then onnxruntime's basic offline optimisation to fold the weights."""
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            model,
            (torch.zeros(EXAMPLE_BATCH, *input_shape),),
            str(raw),
            dynamo=True,
            dynamic_shapes=_batch_dim(),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            external_data=False,
            verbose=False,
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3
        ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    return out


def autotune(
    graph: nn.Module,
    configs: list,
    run_calibration: Callable[[nn.Module], None],
    input_shape: tuple[int, ...],
    score_onnx: Callable[[Path], float],
    reference_accuracy: float,
    budget_points: float,
) -> tuple[nn.Module, list[dict], int, bool]:
    """neural-compressor's `autotune` over `configs`, each trial scored on its exported ONNX file.

    Returns the chosen model, one row per trial, the chosen trial's index and whether the budget was
    met. `autotune` stops at the first config within budget; when none is, it re-quantizes the most
    accurate one, which is returned flagged as over budget.
    """
    quantization, _ = api()
    scores: list[float] = []

    def evaluate(model: nn.Module) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            scores.append(score_onnx(export_folded(model, input_shape, Path(tmp) / "trial.onnx")))
        return scores[-1]

    with _quiet():
        tuned = quantization.autotune(
            _copy(graph),
            # tolerable_loss is relative: a trial passes when acc >= baseline * (1 - loss)
            quantization.TuningConfig(config_set=list(configs), tolerable_loss=budget_points / 100 / reference_accuracy, max_trials=len(configs)),
            eval_fn=evaluate,
            run_fn=run_calibration,
            example_inputs=(torch.zeros(EXAMPLE_BATCH, *input_shape),),
        )
    trial_scores = scores[1:]  # the first evaluation is autotune's float baseline
    trials = [
        {"config": describe(c), "val_accuracy": round(s, 5), "drop_points": round((reference_accuracy - s) * 100, 4)}
        for c, s in zip(configs, trial_scores)
    ]
    within = [i for i, t in enumerate(trials) if t["drop_points"] <= budget_points + 1e-9]
    chosen = within[0] if within else int(np.argmax(trial_scores))
    if tuned is None:
        tuned = quantize(graph, configs[chosen], run_calibration)
    return tuned, trials, chosen, bool(within)
