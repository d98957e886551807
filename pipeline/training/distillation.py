"""Teacher-to-student knowledge distillation as a training objective.

Used by the `distill` stage, by `prune`'s `recovery: distill` (the teacher is the model before
pruning) and by anything else that trains a student with the shared loop. The loss is Hinton et al.'s:
(1 - alpha) * CE(student, labels) + alpha * T^2 * KL(teacher_T || student_T), plus an optional feature
term: the student's last feature map, through a learned 1x1 adapter when widths differ, matched to the
teacher's by mean squared error (FitNets). The adapter only lives during training.

`dual_head_weight > 0` adds Dual-Head KD (Yang et al., "Dual-Head Knowledge Distillation", 2024;
penghui-yang/DHKD): a second linear classifier reads the same pooled features as the student's own
and takes the teacher's signal through a binary KL on logit differences (`binary_kl_norm`), so that
signal shapes the shared features without pulling the exported classifier away from the labels.
The extra head is an adapter: training only, never exported.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pipeline.core.errors import StageError
from pipeline.models.classifier import classifier_name
from pipeline.models.heads import HeadedModel
from pipeline.training.objectives import deep_supervision
from pipeline.models.trace import feature_maps, final_features, trace_outputs
from pipeline.training.objectives import Batch


class KDConfig(BaseModel):
    """How much the student listens to the teacher."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(4.0, gt=0, description="softens both distributions; the KL term is scaled by T^2")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the teacher's term; the labels' cross-entropy gets 1 - alpha")
    feature_weight: float = Field(0.0, ge=0, description="weight of feature matching (MSE through a learned 1x1 adapter); 0 turns it off")
    student_layer: str | Literal["auto"] = Field("auto", description="student module whose output is matched; auto: its last feature map")
    teacher_layer: str | Literal["auto"] = Field("auto", description="teacher module whose output is matched; auto: its last feature map")
    dual_head_weight: float = Field(
        0.0, ge=0, description="Dual-Head KD: weight of the auxiliary head's binary KL to the teacher (1.0 in the paper); 0 turns it off. "
        "Set alpha: 0 for the paper's split (the student's own head learns from the labels only)",
    )


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, 1), F.softmax(teacher_logits / t, 1), reduction="batchmean") * t * t


def binary_kl_norm(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, eps: float = 1e-8) -> torch.Tensor:
    """Dual-Head KD's loss (DHKD's `BinaryKLNorm`): for every logit, d = sigmoid((s - t) / T) is
    compared with 1/2 by a two-sided KL, i.e. each logit is pulled toward the teacher's with a
    bounded gradient; summed over logits, averaged over the batch, scaled by T^2."""
    d = torch.sigmoid((student_logits - teacher_logits) / temperature).clamp(eps, 1 - eps)
    half = torch.full_like(d, 0.5)
    loss = F.kl_div(d.log(), half, reduction="none") + F.kl_div((1 - d).log(), half, reduction="none")
    return temperature**2 * loss.sum() / len(d)


class Teacher:
    """A frozen model in eval mode, with a hook on the layer whose features the student matches."""

    def __init__(self, model: nn.Module, layer: str | None, device: torch.device):
        self.model = model.to(device).eval().requires_grad_(False)
        self.features: torch.Tensor | None = None
        if layer is not None:
            dict(self.model.named_modules())[layer].register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output) -> None:
        self.features = output

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def pick_layer(model: nn.Module, input_shape: tuple[int, ...], layer: str, who: str) -> tuple[str, tuple[int, ...]]:
    trace = trace_outputs(model, input_shape)
    maps = feature_maps(trace)
    if layer == "auto":
        return final_features(trace)
    if layer not in maps:
        raise StageError(f"{who}_layer: {layer!r} is not a module with a 4-D output in the {who}; candidates: {', '.join(maps)}")
    return layer, maps[layer]


def check_compatible(student: nn.Module, teacher: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """A teacher must score the same classes: its output shape must equal the student's. Returns
    the number of classes."""
    x = torch.zeros(2, *input_shape, device=device)
    with torch.no_grad():
        was = student.training
        student.eval()
        s, t = student.to(device)(x), teacher.to(device).eval()(x)
        student.train(was)
    if s.shape != t.shape:
        raise StageError(
            f"teacher outputs shape {list(t.shape)} but the student outputs {list(s.shape)} for the same batch of 2; "
            "a teacher must predict the same classes as the student"
        )
    return s.shape[1]


OutputTerms = Callable[[Batch, torch.Tensor, float, float], dict]  # (batch, teacher outputs, alpha, temperature) -> loss terms


class Distillation:
    """A teacher wired to a student view (the backbone with its heads, if any): `objective` trains the view.

    With feature matching, the student's layer is tapped and a 1x1 adapter is added to the view's
    adapters, so both leave with the view when its owner closes it.
    """

    def __init__(self, cfg: KDConfig, teacher_model: nn.Module, view: HeadedModel, input_shape: tuple[int, ...], device: torch.device, label_smoothing: float,
                 output_terms: OutputTerms | None = None):
        """`output_terms(batch, teacher_outputs, alpha, temperature)`: the labels' and the teacher's
        terms on the model's outputs, for a task whose outputs are not class logits (a detector's,
        `pipeline/tasks/detection_distillation.py`); default: cross-entropy and KL at T."""
        classes = check_compatible(view.backbone, teacher_model, input_shape, device)
        self.cfg, self.label_smoothing, self.view, self.output_terms = cfg, label_smoothing, view, output_terms
        teacher_layer = student_layer = None
        if cfg.feature_weight > 0:
            student_layer, s_shape = pick_layer(view.backbone, input_shape, cfg.student_layer, "student")
            teacher_layer, t_shape = pick_layer(teacher_model, input_shape, cfg.teacher_layer, "teacher")
            view.tap(student_layer)
            view.adapters["kd"] = nn.Conv2d(s_shape[1], t_shape[1], 1, bias=False)
        self.teacher = Teacher(teacher_model, teacher_layer, device)
        self.student_layer = student_layer
        if cfg.dual_head_weight > 0:
            view.adapters["dual_head"] = dual_head(view, classes, input_shape)
        view.to(device)
        self._heads = deep_supervision(view, label_smoothing)

    def objective(self, batch: Batch) -> dict[str, torch.Tensor]:
        teacher_logits = self.teacher(batch.x)
        a = self.cfg.alpha
        if self.output_terms is not None:
            terms = self.output_terms(batch, teacher_logits, a, self.cfg.temperature)
        else:
            terms = {
                "ce": (1 - a) * batch.ce(batch.logits, self.label_smoothing),
                "kd": a * kl_divergence(batch.logits, teacher_logits, self.cfg.temperature),
            }
        if self.student_layer is not None:
            terms["feature"] = self.cfg.feature_weight * feature_mse(
                self.view.adapters["kd"](self.view.taps[self.student_layer]), self.teacher.features
            )
        if self.cfg.dual_head_weight > 0:
            auxiliary = self.view.adapters["dual_head"](self.view.deep_features.flatten(1))
            terms["dual_head"] = self.cfg.dual_head_weight * binary_kl_norm(auxiliary, teacher_logits, self.cfg.temperature)
        terms.update(self._heads(batch))
        return terms


def dual_head(view: HeadedModel, classes: int, input_shape: tuple[int, ...]) -> nn.Linear:
    """A second classifier on the input of the student's own (tapped on `view`), shaped like it."""
    name = classifier_name(view.backbone, input_shape, classes)
    if name is None or not isinstance(view.backbone.get_submodule(name), nn.Linear):
        raise StageError(
            f"dual_head_weight: Dual-Head KD puts a second classifier beside the student's own (an nn.Linear with {classes} "
            "outputs), and this student has none; set dual_head_weight: 0"
        )
    view.tap_classifier_input(name)
    return nn.Linear(view.backbone.get_submodule(name).in_features, classes)


def feature_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between feature maps, pooled to the smaller spatial size when the two differ."""
    if student.shape[2:] != teacher.shape[2:]:
        size = min(student.shape[2], teacher.shape[2]), min(student.shape[3], teacher.shape[3])
        student, teacher = F.adaptive_avg_pool2d(student, size), F.adaptive_avg_pool2d(teacher, size)
    return F.mse_loss(student, teacher)
