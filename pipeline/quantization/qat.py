"""Quantization-aware training: fake-quantized fine-tuning with torch.ao FX, then an INT8 ONNX file.

Route chosen by measurement (`shared/notes/int8-routes.md`, docs/design.md): FX QAT ->
`convert_fx` -> the TorchScript ONNX exporter gives a graph that onnxruntime runs fully in INT8
(every conv a QLinearConv, residual adds fused). The pt2e route left residual convs in FP32 and ran
slower than FP32, and the fake-quant model itself cannot be exported (its fused observer op has no
ONNX form), so the model is converted first. The x86 qconfig matches onnxruntime's kernels:
per-channel symmetric S8 weights, U8 activations.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from exporters import ExportResult, export_onnx
from pipeline.core.errors import StageError
from pipeline.training.distillation import Distillation, KDConfig
from pipeline.models.heads import HeadedModel
from pipeline.training.loop import TrainConfig
from pipeline.training.session import TrainingContext, train

# torch's fbgemm kernels and onnxruntime's round differently; logits may differ by a few
# quantization steps, classes must agree.
QUANTIZED_LOGIT_TOLERANCE = 1.0


class QATConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=3, lr=5e-4, schedule="cosine"),
        description="fine-tuning with fake quantization; a low learning rate, the weights are already trained",
    )
    distill: KDConfig | None = Field(
        None, description="also learn from the float model (the distill stage's loss); null: labels only"
    )


def prepare(model: nn.Module, input_shape: tuple[int, ...], calibration: torch.Tensor) -> nn.Module:
    """A copy of `model` with fake quantization on weights and activations, traced by torch.fx, its
    observers initialised on `calibration` samples.

    Without that first pass, training starts from uninitialised ranges and the moving-average
    observers chase them: measured on tiny_cnn, one epoch then fell from 39 % to 9 % accuracy.
    """
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    example = (torch.zeros(2, *input_shape),)
    student = copy.deepcopy(model).cpu().train()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = prepare_qat_fx(student, get_default_qat_qconfig_mapping("x86"), example)
    except Exception as e:  # torch.fx raises many types for untraceable code
        raise StageError(
            f"quantize.method qat: torch.fx cannot trace this model ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "use method static or accuracy_aware, which work on the exported ONNX file"
        ) from None
    prepared.eval()  # BN keeps its running statistics; observers and fake quantization stay on
    with torch.no_grad():
        for start in range(0, len(calibration), 64):
            prepared(calibration[start : start + 64])
    return prepared.train()


def finetune(qat_model: nn.Module, float_model: nn.Module, cfg: QATConfig, ctx: TrainingContext) -> list[dict]:
    """Fine-tune the fake-quantized model; with `distill`, the float model is the teacher."""
    if cfg.distill is None:
        return train(qat_model, cfg.train, ctx, desc="qat").history
    with HeadedModel(qat_model) as view:
        kd = Distillation(cfg.distill, copy.deepcopy(float_model), view, ctx.data.input_shape, ctx.device, cfg.train.label_smoothing)
        return train(view, cfg.train, ctx, kd.objective, desc="qat").history


def export_int8(qat_model: nn.Module, out: Path, parity_inputs: torch.Tensor) -> ExportResult:
    """Convert fake quantization to quantized ops and export them (Q/DQ around float ops, which
    onnxruntime fuses into INT8 kernels). Parity is checked against the converted torch model: same
    class on real samples, logits within a quantization step's worth of error."""
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_fx(qat_model.cpu().eval())
    return export_onnx(converted, out, parity_inputs, max_abs_diff=QUANTIZED_LOGIT_TOLERANCE, min_top1_agreement=0.97)
