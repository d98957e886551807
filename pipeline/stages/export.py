"""`export`: the current model to ONNX (opset >= 17, dynamic batch), checked against PyTorch on real test samples.

The exported graph is the backbone alone, with exactly one output: auxiliary heads live beside it and
are stripped by construction. After a `nested` stage, every width it sliced gets its own file
(`model-w0.5.onnx`, artifact `onnx_fp32@w0.5`), each through the same parity check. Heads named in `exits` are also kept as early exits in a second file,
`model_exits.onnx` (outputs: the logits, each exit's logits, each exit's input features), with a
confidence threshold per exit chosen on the validation split, and cut into segments that run as a
cascade (see pipeline/early_exit.py).

`runtimes` adds a file per other runtime (ExecuTorch `.pte` lowered to XNNPACK, ncnn `.param` +
`.bin`, OpenVINO IR), at every width, each parity-checked in its own runtime
(`pipeline/runtime/runtime_exports.py`); `auto` builds what the recipe's device profiles admit.
"""

from __future__ import annotations

import json
from typing import Literal

import onnx
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

import pipeline
from devices.on_device.runtimes import model_files
from exporters import export_onnx, extract_segment
from exporters.onnx import INPUT_NAME, OUTPUT_NAME
from pipeline.core.checkpoints import width_model
from pipeline.core.errors import StageError
from pipeline.core.extras import MissingExtra
from pipeline.core.state import ModelState, runtime_artifact, width_artifact
from pipeline.deploy.profiles import RUNTIMES, DeviceProfile
from pipeline.runtime.early_exit import choose_thresholds, summarize, write_cascade
from pipeline.runtime.onnx_files import split_outputs
from pipeline.runtime.runtime_exports import export_for_runtime, file_name, missing_runtimes
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.evaluation import size_figures
from pipeline.models.heads import headed, HeadedModel
from pipeline.models.trace import trace_outputs


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opset: int = Field(17, ge=17, le=23)
    parity_samples: int = Field(256, ge=8, description="real test samples compared between PyTorch and onnxruntime")
    max_abs_diff: float = Field(1e-3, gt=0, description="largest allowed |logit difference|")
    min_top1_agreement: float = Field(0.99, gt=0, le=1, description="share of samples whose predicted class must agree")
    exits: list[str] = Field(default_factory=list, description="auxiliary heads to keep as early exits (names from aux_heads: head1, head2, …)")
    exit_max_accuracy_drop: float = Field(
        0.5, ge=0, description="points of validation accuracy the early exits may cost; thresholds are the lowest that stay within it"
    )
    runtimes: list[Literal[RUNTIMES]] | Literal["auto"] = Field(
        default_factory=lambda: ["onnxruntime"],
        description="runtimes to build a file for, each parity-checked in that runtime (ONNX is always built: the others and quantize start "
        "from it); auto: every runtime the recipe's device profiles admit",
    )

    def runtimes_for(self, profiles: list[DeviceProfile]) -> list[str]:
        """The runtimes to build, ONNX Runtime first."""
        wanted = [r for p in profiles for r in p.runtimes] if self.runtimes == "auto" else self.runtimes
        return list(dict.fromkeys(["onnxruntime", *wanted]))


def check_export(cfg: ExportConfig, earlier: Earlier) -> list[str]:
    asked = earlier.device_runtimes if cfg.runtimes == "auto" else cfg.runtimes
    problems = [MissingExtra(p.extra, p + " (runtimes: auto, and a device of the recipe runs it)") if cfg.runtimes == "auto" else p for p in missing_runtimes(list(asked))]
    if cfg.exits and "heads" not in earlier.capabilities:
        problems.append(f"exits {cfg.exits} are auxiliary heads: put an {earlier.who_adds('heads')} stage before export")
    return problems


def model_metadata(ctx: StageContext) -> dict[str, str]:
    """What a deployment needs to feed the model correctly, written into the ONNX file itself."""
    return {
        "producer": f"edge-compress {pipeline.__version__}",
        "recipe": ctx.recipe_meta["name"],
        "recipe_sha256": ctx.recipe_meta["sha256"],
        "input_shape": json.dumps([None, *ctx.data.input_shape]),
        "preprocessing": json.dumps({
            "scale": 1 / 255, "mean": ctx.data.mean, "std": ctx.data.std, "formula": "(pixel / 255 - mean[c]) / std[c], per channel c",
            "channels": ctx.data.input_shape[0], "layout": "NCHW", "resize": ctx.data.resize,
        }),
        "class_names": json.dumps(ctx.data.class_names),
    }


def checked_export(cfg: ExportConfig, module: nn.Module, path, ctx: StageContext, metadata: dict[str, str] | None = None, **kwargs):
    """`export_onnx` with the stage's parity settings, on the stage's test samples, with the run's metadata (plus `metadata`)."""
    return export_onnx(
        module, path, ctx.data.test.take(cfg.parity_samples)[0], {**model_metadata(ctx), **(metadata or {})},
        opset=cfg.opset, max_abs_diff=cfg.max_abs_diff, min_top1_agreement=cfg.min_top1_agreement, **kwargs,
    )


@stage("export", ExportConfig, provides=("onnx_fp32",), check=check_export, uses_device_runtimes=True, tasks=("classification", "detection"))
def run(cfg: ExportConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Export FP32 ONNX with metadata; a parity failure fails the run and nothing is shipped."""
    path, ref = ctx.artifact("model.onnx")
    model = state.model.cpu().eval()
    result = checked_export(cfg, model, path, ctx)
    ctx.metrics.update(
        accuracy=round(ctx.score(path, "test"), 5),
        val_accuracy=round(ctx.score(path, "val"), 5),
        **{**size_figures(model, ctx.data.input_shape), "size_bytes": path.stat().st_size},
        parity={k: v for k, v in result.to_json().items() if k != "path"},
    )
    ctx.metrics["outputs"] = [o.name for o in onnx.load(str(path)).graph.output]
    ctx.metrics["heads_stripped"] = list(state.heads or {})
    if not state.reference and not state.compressed:  # a user checkpoint exported as is: it is the baseline
        state.reference = {k: ctx.metrics[k] for k in ("accuracy", "val_accuracy", "params", "macs", "size_bytes")} | {"source": "export"}
    state.artifacts["onnx_fp32"] = ref
    state.artifacts.pop("onnx_exits", None)
    if cfg.exits:
        state.artifacts["onnx_exits"] = export_exits(cfg, state, ctx)
    runtimes = cfg.runtimes_for(ctx.profiles)
    if problems := missing_runtimes(runtimes):
        raise StageError("export: " + "; ".join(problems) + " (the recipe's devices admit it; or list export.runtimes yourself)")
    ctx.metrics["runtimes"] = export_runtimes(runtimes, model, path, 1, state, ctx, cfg)
    if state.widths:
        ctx.metrics["widths"] = [export_width(cfg, state, entry, ctx) for entry in state.widths]
        for entry in state.widths:
            if entry["width"] < 1:
                module = width_model(state.model, state.widths, entry["width"], ctx.resolve)
                onnx_file = ctx.resolve(state.artifacts[width_artifact("onnx_fp32", entry["width"])])
                ctx.metrics["runtimes"].update(export_runtimes(runtimes, module, onnx_file, entry["width"], state, ctx, cfg))
    return state


def export_runtimes(runtimes: list[str], model: nn.Module, onnx_file, width: float, state: ModelState, ctx: StageContext, cfg: ExportConfig) -> dict:
    """Each other runtime's FP32 file of `model` (artifact `executorch_fp32`, `ncnn_fp32@w0.5`, …),
    parity-checked in that runtime on the same samples as the ONNX file; accuracy measured there too."""
    rows = {}
    stem = "model" if width == 1 else f"model-w{width:g}"
    metadata = {**model_metadata(ctx), **({"width": f"{width:g}"} if width < 1 else {})}
    for runtime in runtimes[1:]:
        path, ref = ctx.artifact(file_name(stem, runtime))
        ctx.log.info(f"export {runtime} ({runtimes.index(runtime)}/{len(runtimes) - 1}): writing {ref}, then its parity check in {runtime} …")
        result = export_for_runtime(runtime, model, onnx_file, path, ctx.data.test.take(cfg.parity_samples)[0], metadata, "export",
                                    max_abs_diff=cfg.max_abs_diff, min_top1_agreement=cfg.min_top1_agreement)
        name = runtime_artifact(runtime, "fp32", width)
        state.artifacts[name] = ref
        rows[name] = {
            "file": ref, "accuracy": round(ctx.score(path, "test"), 5),
            "size_bytes": sum(f.stat().st_size for f in model_files(path)), "parity": {k: v for k, v in result.to_json().items() if k != "path"},
        }
        ctx.log.info(f"export {runtime}: {ref}, parity max |diff| {result.max_abs_diff:.2g}, accuracy {rows[name]['accuracy']:.4f}")
    return rows


def export_width(cfg: ExportConfig, state: ModelState, entry: dict, ctx: StageContext) -> dict:
    """One nested width (`ModelState.widths`, sliced by the stage that trained them) to its own ONNX
    file, through the same parity check; the full width is `model.onnx` itself."""
    width = entry["width"]
    if width == 1:
        return {"width": 1.0, "file": state.artifacts["onnx_fp32"], "accuracy": ctx.metrics["accuracy"], "params": ctx.metrics["params"], "size_bytes": ctx.metrics["size_bytes"]}
    model = width_model(state.model, state.widths, width, ctx.resolve)
    path, ref = ctx.artifact(f"model-w{width:g}.onnx")
    checked_export(cfg, model, path, ctx, {"width": f"{width:g}"})
    state.artifacts[width_artifact("onnx_fp32", width)] = ref
    return {"width": width, "file": ref, "accuracy": round(ctx.score(path, "test"), 5), "params": entry["params"], "size_bytes": path.stat().st_size}


class ExitModel(nn.Module):
    """The backbone's logits, then each exit's logits, then each exit's input features (the cut points)."""

    def __init__(self, view: HeadedModel, exits: list[str]):
        super().__init__()
        self.view, self.exits = view, exits

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.view(x)
        attach = [self.view.specs[e].attach for e in self.exits]
        return (logits, *[self.view.head_logits[e] for e in self.exits], *[self.view.taps[a] for a in attach])


def export_exits(cfg: ExportConfig, state: ModelState, ctx: StageContext) -> str:
    """The multi-exit file, its thresholds (chosen on the validation split) and its cascade segments."""
    heads = list(state.heads or {})
    unknown = [e for e in cfg.exits if e not in heads]
    if unknown:
        raise StageError(f"export.exits: no head named {', '.join(unknown)}; the model's heads: {', '.join(heads) or 'none (add aux_heads)'}")
    order = [name for name, _ in trace_outputs(state.model, ctx.data.input_shape)]
    by_depth = {s["name"]: order.index(s["attach"]) for s in state.head_specs}
    exits = sorted(cfg.exits, key=by_depth.__getitem__)
    names = [f"exit_{e}" for e in exits]
    features = [f"features_{e}" for e in exits]
    path, ref = ctx.artifact("model_exits.onnx")
    with headed(state) as view:
        checked_export(cfg, ExitModel(view.cpu().eval(), exits), path, ctx, output_names=[OUTPUT_NAME, *names, *features])
    val, val_labels = split_outputs(path, ctx.data.val)
    thresholds = choose_thresholds(val[1 : 1 + len(exits)], val[0], val_labels, cfg.exit_max_accuracy_drop)
    segments = []
    cuts = [INPUT_NAME, *features]
    for k in range(len(exits) + 1):
        outputs = [names[k], features[k]] if k < len(exits) else [OUTPUT_NAME]
        segment = ctx.stage_dir / f"exit_segment_{k + 1}.onnx"
        try:
            extract_segment(path, segment, [cuts[k]], outputs)
        except ValueError as e:
            raise StageError(f"export.exits: the exit after {exits[k - 1] if k else 'the input'} is not a clean cut of the graph ({e})") from None
        segments.append(segment.name)
    write_cascade(path, exits, thresholds, segments)
    test, test_labels = split_outputs(path, ctx.data.test)
    ctx.metrics["early_exit"] = {
        "exits": exits,
        "thresholds": thresholds,
        "segments": segments,
        "val_max_accuracy_drop_points": cfg.exit_max_accuracy_drop,
        "test": summarize(exits, test[1 : 1 + len(exits)], test[0], test_labels, thresholds),
    }
    ctx.log.info(f"export: early exits {exits} with thresholds {thresholds} (chosen on the validation split)")
    return ref
