"""Self-supervised label augmentation with self-distillation (SLA+SD: Lee, Hwang and Shin, ICML 2020;
hankook/SLA `trainers.py`).

A joint head over (class, rotation) sees every image at the four right-angle rotations and learns
the joint label `class * 4 + rotation`: the network learns what a rotated shirt looks like without
having to call it the same thing. The joint head's *aggregated* prediction (for each class, the mean
over rotations of the logit of (class, rotation) on that rotated image, then a softmax over classes)
is a stronger classifier than either head alone, and it teaches the ordinary head by KL. Only the
ordinary head is exported: the joint head is a training adapter, so inference stays one pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pipeline.core.errors import StageError
from pipeline.models.heads import HeadedModel
from pipeline.training.objectives import Batch

ROTATIONS = 4


class SlaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    joint_weight: float = Field(1.0, ge=0, description="weight of the joint (class x rotation) cross-entropy")
    distill_weight: float = Field(1.0, ge=0, description="weight of the KL from the aggregated joint prediction to the ordinary head")
    temperature: float = Field(1.0, gt=0, description="of that KL (the paper's default: 1)")


def rotations(x: torch.Tensor) -> list[torch.Tensor]:
    """The batch at 0, 90, 180 and 270 degrees."""
    return [torch.rot90(x, k, (2, 3)) for k in range(ROTATIONS)]


def aggregate(joint: torch.Tensor, classes: int) -> torch.Tensor:
    """Class probabilities from joint logits `[ROTATIONS, N, classes * ROTATIONS]`, where row r was
    computed on the batch rotated r times: softmax over c of mean over r of joint[r, :, c * 4 + r]."""
    per_rotation = joint.view(ROTATIONS, joint.shape[1], classes, ROTATIONS)
    own = torch.stack([per_rotation[r, :, :, r] for r in range(ROTATIONS)])
    return F.softmax(own.mean(0), 1)


class SlaTerms:
    """Adds the joint head (an adapter on the classifier's input) to `view`; each step runs the three
    rotated copies through the model (the unrotated pass is the loop's own) and returns the joint
    cross-entropy and the self-distillation KL. Call it after any term that reads the heads' or
    classifier's outputs of the unrotated pass: the rotated pass replaces them."""

    def __init__(self, view: HeadedModel, cfg: SlaConfig, classifier: str, classes: int, input_shape: tuple[int, ...]):
        if input_shape[1] != input_shape[2]:
            raise StageError(f"self_distill.mode sla rotates images by 90 degrees, which needs square inputs; these are {input_shape[1]}x{input_shape[2]} (set data.input_size)")
        view.tap_classifier_input(classifier)
        view.adapters["sla_joint"] = nn.Linear(view.backbone.get_submodule(classifier).in_features, classes * ROTATIONS)
        self.view, self.cfg, self.classes = view, cfg, classes

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        upright = self.view.deep_features.flatten(1)
        turned = rotations(batch.x)[1:]
        self.view(torch.cat(turned))
        features = torch.cat([upright, self.view.deep_features.flatten(1)])
        joint = self.view.adapters["sla_joint"](features).view(ROTATIONS, len(batch.x), -1)
        terms = {"sla_joint": self.cfg.joint_weight * self._joint_ce(joint, batch)}
        teacher = aggregate(joint.detach(), self.classes)
        t = self.cfg.temperature
        soft_teacher = F.softmax(teacher.clamp_min(1e-12).log() / t, 1)
        terms["sla_sd"] = self.cfg.distill_weight * t * t * F.kl_div(F.log_softmax(batch.logits / t, 1), soft_teacher, reduction="batchmean")
        return terms

    def _joint_ce(self, joint: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy against `label * 4 + rotation` over all four copies (both labels when mixed)."""
        flat = joint.reshape(-1, joint.shape[-1])
        rotation = torch.arange(ROTATIONS, device=joint.device).repeat_interleave(len(batch.y))

        def ce(labels: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(flat, labels.repeat(ROTATIONS) * ROTATIONS + rotation)

        if batch.mix is None:
            return ce(batch.y)
        return batch.mix.lam * ce(batch.y) + (1 - batch.mix.lam) * ce(batch.mix.y)
