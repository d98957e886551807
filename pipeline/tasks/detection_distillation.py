"""Distillation for a detector: the teacher's dense outputs teach the student at every location.

The labels' terms are the detection loss (`detection_loss.py`), weighted 1 - alpha. The teacher's,
weighted alpha, read its outputs at each location as soft targets:
- `kd_cls`: binary cross-entropy of the student's class logits against the teacher's probabilities
  (both at temperature T, scaled by T^2, like Hinton's KL), weighted by how far apart the two are
  (|p_s - p_t|^2, so the many locations where both see background cost little, as a focal loss
  does) and normalised by the teacher's total class mass (about its number of confident locations);
- `kd_box`: generalised IoU of the student's box against the teacher's, and `kd_ctr`: the
  centre-ness against the teacher's, both weighted at each location by the teacher's own score
  there (its best class probability times its centre-ness), so only where it sees an object.
Feature matching, when asked, is the shared `Distillation`'s, on the layers it picks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.tasks.detection_loss import detection_loss, giou_loss

KD_GAMMA = 2.0


def detection_distillation_terms(stride: int):
    """The `output_terms` a detector's `Distillation` uses (see the module's docstring)."""

    def terms(batch, teacher: torch.Tensor, alpha: float, temperature: float) -> dict[str, torch.Tensor]:
        student = batch.logits
        labels = detection_loss(student, batch.y, tuple(batch.x.shape[2:]), stride)
        t = temperature
        p_teacher = torch.sigmoid(teacher[:, :, 5:] / t)
        p_student = torch.sigmoid(student[:, :, 5:] / t)
        weight = (p_student - p_teacher).abs().detach() ** KD_GAMMA
        cls = (F.binary_cross_entropy_with_logits(student[:, :, 5:] / t, p_teacher, reduction="none") * weight).sum()
        cls = cls * t * t / p_teacher.sum().clamp(min=1.0)
        seen = (torch.sigmoid(teacher[:, :, 5:]).max(dim=2).values * torch.sigmoid(teacher[:, :, 4])).detach()  # [N, A]
        mass = seen.sum().clamp(min=1e-6)
        box = (giou_loss(student[:, :, :4].reshape(-1, 4), teacher[:, :, :4].reshape(-1, 4)) * seen.reshape(-1)).sum() / mass
        ctr = (F.binary_cross_entropy_with_logits(student[:, :, 4], torch.sigmoid(teacher[:, :, 4]), reduction="none") * seen).sum() / mass
        return {**{name: (1 - alpha) * value for name, value in labels.items()},
                "kd_cls": alpha * cls, "kd_box": alpha * box, "kd_ctr": alpha * ctr}

    return terms
