"""`self_distill`: the model teaches itself, at no inference cost.

- `byot` (Zhang et al., "Be Your Own Teacher", ICCV 2019): the deepest classifier teaches every
  auxiliary head by KL at temperature T, and an L2 hint pulls each head's features toward the deepest
  features; the deepest classifier learns from the labels. The heads pass their learning back into the
  shared layers. Needs heads: put `aux_heads` before this stage.
- `pskd` (Kim et al., "Self-Knowledge Distillation with Progressive Refinement of Targets", ICCV 2021):
  the target of each sample mixes its label with the model's own prediction for it in the previous
  epoch, the mixing weight rising linearly to `pskd_alpha` over training. Works without heads.
- `both`: the two together.
- `sla` (Lee et al., "Self-supervised Label Augmentation", ICML 2020, SLA+SD): a joint head over
  (class, rotation) learns from the four rotated copies of each batch, and its aggregated prediction
  teaches the model's own classifier (`pipeline/training/label_augmentation.py`). Works without
  heads; the joint head is never exported.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pipeline.core import distributed
from pipeline.core.errors import StageError
from pipeline.core.state import ModelState
from pipeline.models.classifier import classifier_name
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.distillation import kl_divergence
from pipeline.models.heads import headed, HeadedModel
from pipeline.training.objectives import deep_supervision
from pipeline.training.label_augmentation import SlaConfig, SlaTerms
from pipeline.training.loop import TrainConfig
from pipeline.training.objectives import Batch, cross_entropy
from pipeline.training.session import train


class SelfDistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["byot", "pskd", "both", "sla"] = Field(
        "byot", description="byot: deepest classifier teaches the heads; pskd: progressive self-knowledge targets; sla: rotation label augmentation + self-distillation"
    )
    temperature: float = Field(3.0, gt=0, description="BYOT: softens the deepest classifier's distribution")
    alpha: float = Field(0.3, ge=0, le=1, description="BYOT: weight of the KL term in each head's loss; its cross-entropy gets 1 - alpha")
    hint_weight: float = Field(0.1, ge=0, description="BYOT: weight of the L2 feature hint from the deepest features to each head's; 0 turns it off")
    pskd_alpha: float = Field(0.8, ge=0, le=1, description="PS-KD: final weight of the model's own previous-epoch predictions in the target")
    sla: SlaConfig = Field(default_factory=SlaConfig, description="mode sla: weights of the joint head and of its distillation")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=10))


def needs_heads(cfg: SelfDistillConfig, earlier: Earlier) -> list[str]:
    if cfg.mode in ("byot", "both") and "heads" not in earlier.capabilities:
        return [f"mode {cfg.mode} needs auxiliary heads to teach: put an {earlier.who_adds('heads')} stage before it (or use mode: pskd or sla)"]
    return []


@stage("self_distill", SelfDistillConfig, changes_model=True, trains=True, check=needs_heads)
def run(cfg: SelfDistillConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Self-distillation (BYOT and/or PS-KD, or SLA+SD) with the shared training loop; loss terms per epoch in the metrics."""
    byot = cfg.mode in ("byot", "both")
    if byot and not state.heads:
        raise StageError(f"self_distill: mode {cfg.mode} needs auxiliary heads, and the model has none; add an aux_heads stage before it (or use mode: pskd)")
    classifier = classifier_name(state.model, ctx.data.input_shape, ctx.data.num_classes) if byot and cfg.hint_weight > 0 else None
    if byot and cfg.hint_weight > 0 and classifier is None:
        raise StageError(
            f"self_distill.hint_weight: feature hints read the input of the model's classifier (an nn.Linear with "
            f"{ctx.data.num_classes} outputs), and this model has none; set hint_weight: 0"
        )
    sla_classifier = classifier_name(state.model, ctx.data.input_shape, ctx.data.num_classes) if cfg.mode == "sla" else None
    if cfg.mode == "sla" and sla_classifier is None:
        raise StageError(f"self_distill.mode sla: the joint head reads the input of the model's classifier (an nn.Linear with {ctx.data.num_classes} outputs), and this model has none")
    with headed(state, classifier=classifier) as view:
        smoothing = cfg.train.label_smoothing
        byot_terms = ByotTerms(view, cfg, smoothing, classifier) if byot else None
        pskd = PskdTargets(len(ctx.data.train), ctx.data.num_classes, cfg.pskd_alpha) if cfg.mode in ("pskd", "both") else None
        sla = SlaTerms(view, cfg.sla, sla_classifier, ctx.data.num_classes, ctx.data.input_shape) if sla_classifier else None
        trained = train(view, cfg.train, ctx, SelfDistillObjective(view, smoothing, byot_terms, pskd, sla), desc="self_distill")
    ctx.record_training(state, trained, "self_distill", mode=cfg.mode)
    return state


class ByotTerms:
    """Per head: (1 - alpha) CE + alpha KL(deepest || head) + hint * |head features - deepest features|^2.
    The deepest classifier's outputs are the teacher's and are not pushed toward the heads (detached)."""

    def __init__(self, view: HeadedModel, cfg: SelfDistillConfig, label_smoothing: float, classifier: str | None):
        self.view, self.cfg, self.label_smoothing = view, cfg, label_smoothing
        if classifier is not None:
            deep_width = dict(view.backbone.named_modules())[classifier].in_features
            for name in view.specs:
                head_width = view.heads[name].fc.in_features
                if head_width != deep_width:  # linear heads: features as wide as their attach point
                    view.adapters[f"hint_{name}"] = nn.Linear(head_width, deep_width, bias=False)

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        v, cfg = self.view, self.cfg
        teacher = batch.logits.detach()
        deep = v.deep_features.detach().flatten(1) if v.deep_features is not None else None
        terms = {}
        for name, logits in v.head_logits.items():
            terms[f"ce_{name}"] = (1 - cfg.alpha) * batch.ce(logits, self.label_smoothing)
            terms[f"kd_{name}"] = cfg.alpha * kl_divergence(logits, teacher, cfg.temperature)
            if deep is not None:
                features = v.head_features[name]
                if f"hint_{name}" in v.adapters:
                    features = v.adapters[f"hint_{name}"](features)
                terms[f"hint_{name}"] = cfg.hint_weight * F.mse_loss(features, deep)
        return terms


class PskdTargets:
    """Remembers each training sample's softmax from the current epoch to build the next epoch's targets.

    Under torchrun each rank sees a different share of the samples each epoch, so at the turn of an
    epoch the ranks pool what they saw (every rank reaches its first step of the epoch together)."""

    def __init__(self, n: int, classes: int, final_alpha: float):
        self.previous = torch.zeros(n, classes)
        self.current = torch.zeros(n, classes)
        self.seen = torch.zeros(n)
        self.final_alpha, self.epoch = final_alpha, 0

    def __call__(self, batch: Batch, smoothed_labels: torch.Tensor) -> torch.Tensor:
        if batch.epoch != self.epoch:
            self.previous, self.epoch = self._pooled(), batch.epoch
        idx = batch.idx
        self.current[idx] = F.softmax(batch.logits.detach(), 1).cpu()
        self.seen[idx] = 1.0
        alpha = self.final_alpha * batch.epoch / max(1, batch.epochs - 1)  # 0 in the first epoch: nothing remembered yet
        return (1 - alpha) * smoothed_labels + alpha * self.previous[idx].to(smoothed_labels.device)

    def _pooled(self) -> torch.Tensor:
        """Every rank's predictions of the epoch that ended (a sample two ranks saw: their mean)."""
        total, count = distributed.all_sum(self.current.clone()), distributed.all_sum(self.seen.clone())
        self.current.zero_()
        self.seen.zero_()
        return total / count.clamp(min=1).unsqueeze(1)


class SelfDistillObjective:
    def __init__(self, view: HeadedModel, label_smoothing: float, byot: ByotTerms | None, pskd: PskdTargets | None, sla: SlaTerms | None = None):
        self.view, self.label_smoothing, self.byot, self.pskd, self.sla = view, label_smoothing, byot, pskd, sla
        self.labels = cross_entropy(label_smoothing)
        self.heads_from_labels = deep_supervision(view, label_smoothing)  # heads kept from aux_heads keep learning

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.pskd is None:
            terms = self.labels(batch)
        else:
            classes = batch.logits.shape[1]
            labels = batch.targets(classes, self.label_smoothing)
            target = self.pskd(batch, labels)
            terms = {"ce_pskd": -(target * F.log_softmax(batch.logits, 1)).sum(1).mean()}
        if self.byot is not None:
            terms.update(self.byot(batch))
        else:
            terms.update(self.heads_from_labels(batch))
        if self.sla is not None:  # last: its rotated pass replaces the heads' and classifier's outputs
            terms.update(self.sla(batch))
        return terms

