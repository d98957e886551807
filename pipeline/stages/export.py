"""`export`: the current model to ONNX (opset >= 17, dynamic batch), checked against PyTorch on real test samples."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

import pipeline
from exporters import export_onnx
from pipeline.evaluation import size_figures
from pipeline.onnx_runtime import onnx_accuracy
from pipeline.stages import StageContext, stage
from pipeline.state import ModelState


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opset: int = Field(17, ge=17, le=23)
    parity_samples: int = Field(256, ge=8, description="real test samples compared between PyTorch and onnxruntime")
    max_abs_diff: float = Field(1e-3, gt=0, description="largest allowed |logit difference|")
    min_top1_agreement: float = Field(0.99, gt=0, le=1, description="share of samples whose predicted class must agree")


def model_metadata(ctx: StageContext) -> dict[str, str]:
    """What a deployment needs to feed the model correctly, written into the ONNX file itself."""
    return {
        "producer": f"edge-compress {pipeline.__version__}",
        "recipe": ctx.recipe_meta["name"],
        "recipe_sha256": ctx.recipe_meta["sha256"],
        "input_shape": json.dumps([None, *ctx.data.input_shape]),
        "preprocessing": json.dumps({"scale": 1 / 255, "mean": ctx.data.mean, "std": ctx.data.std, "formula": "(pixel / 255 - mean) / std"}),
        "class_names": json.dumps(ctx.data.class_names),
    }


@stage("export", ExportConfig, provides=("onnx_fp32",))
def run(cfg: ExportConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Export FP32 ONNX with metadata; a parity failure fails the run and nothing is shipped."""
    path, ref = ctx.artifact("model.onnx")
    model = state.model.cpu().eval()
    result = export_onnx(
        model,
        path,
        ctx.data.test.x[: cfg.parity_samples],
        model_metadata(ctx),
        opset=cfg.opset,
        max_abs_diff=cfg.max_abs_diff,
        min_top1_agreement=cfg.min_top1_agreement,
    )
    ctx.metrics.update(
        accuracy=round(onnx_accuracy(path, ctx.data.test), 5),
        **{**size_figures(model, ctx.data.input_shape), "size_bytes": path.stat().st_size},
        parity={k: v for k, v in result.to_json().items() if k != "path"},
    )
    if not state.reference and not state.compressed:  # a user checkpoint exported as is: it is the baseline
        state.reference = {k: ctx.metrics[k] for k in ("accuracy", "params", "macs", "size_bytes")} | {"source": "export"}
    state.artifacts["onnx_fp32"] = ref
    return state
