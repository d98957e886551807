"""`aux_heads`: classifier heads on intermediate blocks, trained jointly with the model (deep supervision).

The heads are attached by forward hooks, so any model works without editing its code, and they live
beside the backbone: later stages keep training them (pruning trims their inputs with the backbone's
channels) and `export` ships the backbone alone, unless it is asked to keep some heads as early exits.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.core.errors import StageError
from pipeline.core.state import ModelState
from pipeline.stages.base import StageContext, stage
from pipeline.models.heads import build_heads, headed, HeadKind, make_specs
from pipeline.training.objectives import supervised_objective
from pipeline.training.loop import TrainConfig
from pipeline.training.session import train

Weight = Annotated[float, Field(ge=0)]


class AuxHeadsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attach: list[str] | Literal["auto"] = Field(
        "auto", description="module names whose outputs get a head; auto: the output of each stage of the network (where the spatial size changes)"
    )
    kind: HeadKind = Field("bottleneck", description="linear: pool + linear; bottleneck: 1x1/3x3/1x1 convs, then pool + linear (Be-Your-Own-Teacher)")
    weights: Weight | list[Weight] = Field(0.3, description="deep-supervision loss weight, one for all heads or one per head")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=10), description="joint training of the model and its heads")


@stage("aux_heads", AuxHeadsConfig, adds=("heads",), changes_model=True, trains=True)
def run(cfg: AuxHeadsConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Attach auxiliary heads and train them with the model (deep supervision); each head's accuracy is recorded."""
    if state.heads:
        raise StageError(f"aux_heads: the model already has heads ({', '.join(state.heads)}); use one aux_heads stage per recipe")
    specs = make_specs(state.model, ctx.data.input_shape, cfg.attach, cfg.kind, cfg.weights, ctx.data.num_classes, field="aux_heads.attach")
    state.heads = build_heads(specs)
    state.head_specs = [s.model_dump() for s in specs]
    ctx.log.info("aux_heads: " + ", ".join(f"{s.name} ({s.kind}) after {s.attach} [{s.in_channels} ch]" for s in specs))
    with headed(state) as view:
        trained = train(view, cfg.train, ctx, supervised_objective(view, cfg.train.label_smoothing), desc="aux_heads")
    ctx.record_training(state, trained, "aux_heads", heads=state.head_specs, head_params=sum(p.numel() for p in state.heads.parameters()))
    ctx.log.info("aux_heads test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in trained.heads_accuracy.items()))
    return state
