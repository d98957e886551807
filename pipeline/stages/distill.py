"""`distill`: teacher-to-student knowledge distillation (Hinton et al. 2015; FitNets' feature matching).

The teacher is the model as it entered an earlier stage (`teacher: before:prune` recovers what
pruning took, with the unpruned model as teacher), or another model from a checkpoint
(`teacher: {name: resnet20, checkpoint: runs/teacher/01-train/model.pt}`), which may be wider or a
different architecture: it only has to predict the same classes. A detector learns from the
teacher's dense outputs (`pipeline/tasks/detection_distillation.py`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from pipeline.core.errors import StageError
from pipeline.core.state import ModelState
from pipeline.models import ModelConfig, build_model
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.distillation import Distillation, KDConfig
from pipeline.models.heads import headed
from pipeline.training.loop import TrainConfig
from pipeline.training.session import train

BEFORE = "before:"


class DistillConfig(KDConfig):
    teacher: str | ModelConfig = Field(
        description='"before:<stage>" (the model as it entered that earlier stage) or a model with a checkpoint: {name: resnet20, checkpoint: path}'
    )
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=5, lr=1e-3))

    @field_validator("teacher")
    @classmethod
    def _teacher_source(cls, value: str | ModelConfig) -> str | ModelConfig:
        if isinstance(value, str) and (not value.startswith(BEFORE) or not value[len(BEFORE) :]):
            raise ValueError(f'a teacher is "before:<stage name>" (e.g. "before:prune") or a model with a checkpoint; got {value!r}')
        if isinstance(value, ModelConfig) and not value.checkpoint:
            raise ValueError("a teacher model needs `checkpoint:` (an untrained teacher teaches nothing)")
        return value


def teacher_stage_exists(cfg: DistillConfig, earlier: Earlier) -> list[str]:
    if isinstance(cfg.teacher, str):
        name = cfg.teacher[len(BEFORE) :]
        if name not in earlier.names:
            return [f"teacher {cfg.teacher!r}: no {name!r} stage runs before this one (stages before it: {', '.join(earlier.names) or 'none'})"]
    return []


@stage("distill", DistillConfig, changes_model=True, trains=True, check=teacher_stage_exists, tasks=("classification", "detection"))
def run(cfg: DistillConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Train the model as a student of a teacher (KL at temperature T + cross-entropy, optional feature matching)."""
    if isinstance(cfg.teacher, str):
        teacher, source = ctx.model_before(cfg.teacher[len(BEFORE) :]), cfg.teacher
    else:
        if not Path(cfg.teacher.checkpoint).is_file():
            raise StageError(f"distill.teacher.checkpoint: {cfg.teacher.checkpoint} does not exist (a path relative to where compress runs)")
        teacher, source = build_model(cfg.teacher, ctx.data.input_shape[0], ctx.data.num_classes), cfg.teacher.checkpoint
    if cfg.dual_head_weight > 0 and ctx.task.name != "classification":
        raise StageError(f"distill.dual_head_weight: Dual-Head KD's auxiliary head scores classes, which a {ctx.task.name} model does not return; set it to 0")
    teacher_metrics = ctx.figures(teacher)
    ctx.log.info(f"distill: teacher {source}: test acc {teacher_metrics['accuracy']:.4f}, {teacher_metrics['params']:,} params")
    with headed(state) as view:
        kd = Distillation(cfg, teacher, view, ctx.data.input_shape, ctx.device, cfg.train.label_smoothing, ctx.task.distillation(view))
        trained = train(view, cfg.train, ctx, kd.objective, desc="distill")
    ctx.record_training(state, trained, "distill", teacher={"source": source, **teacher_metrics})
    return state
