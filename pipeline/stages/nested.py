"""`nested`: one training, a network at every width: the leading channels of each layer form a
working smaller network (slimmable / US-Nets / SortedNet), and each listed width is sliced into a
physically smaller model.

First each channel group (torch-pruning's dependency graph: coupled channels move together) is
sorted by importance, which leaves the network's function unchanged. Training then follows the
sandwich rule with in-place distillation (`pipeline/widths/sandwich.py`), each narrow width run as
the smaller network on views of the full weights where every kept block is leading
(`pipeline/widths/views.py`; `narrow_passes: views` in the metrics), masked otherwise. Afterwards
every width is sliced (channels really removed, checked against the masked network), its BatchNorm
statistics are measured again at its own width, and its checkpoint is written beside the full model; the state
lists them (`ModelState.widths`) for the stages after it.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.core.checkpoints import save_model
from pipeline.core.errors import StageError
from pipeline.core.state import ModelState
from pipeline.stages.base import Earlier, StageContext, stage
from pipeline.training.evaluation import size_figures
from pipeline.training.loop import TrainConfig
from pipeline.training.session import train
from pipeline.widths.groups import channel_groups
from pipeline.widths.masks import WidthMasks
from pipeline.widths.ordering import order_channels
from pipeline.widths.sandwich import sandwich
from pipeline.widths.slicing import recalibrate_batchnorm, slice_width
from pipeline.widths.views import NotLeading, width_views


class NestedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    widths: list[float] | int = Field(
        default_factory=lambda: [0.25, 0.5, 0.75, 1.0],
        description="shares of each layer's channels to ship, in (0, 1]; or a count n for the evenly spaced 1/n, 2/n, ..., 1",
    )
    sampled: int = Field(1, ge=0, description="widths between the smallest and the full one trained each step besides those two")
    temperature: float = Field(1.0, gt=0, description="softening of the full width's prediction that teaches the narrower ones")
    distill_weight: float = Field(1.0, gt=0, description="weight of the narrower widths' term against the full width's cross-entropy")
    importance: Literal["magnitude", "lamp", "bn_scale"] = Field("magnitude", description="what orders each group's channels before training")
    ignore: list[str] = Field(default_factory=list, description="module names whose output channels stay at full width at every width")
    recalibration_batches: int = Field(20, ge=1, description="training batches that measure each width's BatchNorm statistics")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=10))

    @field_validator("widths")
    @classmethod
    def _widths(cls, value: list[float] | int) -> list[float]:
        if isinstance(value, int):
            if value < 2:
                raise ValueError(f"a count of widths must be at least 2 (got {value})")
            return [round(k / value, 4) for k in range(1, value + 1)]
        if not value or any(not 0 < w <= 1 for w in value):
            raise ValueError(f"every width is a share of the channels in (0, 1]; got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"widths repeat: {value}")
        if min(value) == 1:
            raise ValueError("give at least one width below 1 (the full width alone is plain training: use train)")
        return sorted(value)


def no_heads_before(cfg: NestedConfig, earlier: Earlier) -> list[str]:
    if "heads" in earlier.capabilities:
        return ["nested trains the network alone: put it before the stages that attach auxiliary heads (their heads would not follow the widths)"]
    return []


@stage("nested", NestedConfig, adds=("widths",), changes_model=True, removes_channels=True, trains=True, check=no_heads_before)
def run(cfg: NestedConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Train one network whose leading channels work at every listed width; slice and checkpoint each width."""
    if state.heads:
        raise StageError("nested trains the network alone: put it before aux_heads / self_distill (their heads would not follow the widths)")
    data, shape = ctx.data, ctx.data.input_shape
    model = state.model.cpu()
    with channel_groups(model, shape, data.num_classes, cfg.ignore) as (graph, groups):
        if not groups:
            raise StageError("nested: the dependency graph found no channel group to shrink (every layer is a classifier or ignored)")
        moved = order_channels(graph, groups, cfg.importance)
        ctx.log.info(f"nested: {len(groups)} channel groups, {moved} reordered by {cfg.importance} importance")
    terms = (cfg.widths, cfg.sampled, cfg.temperature, cfg.train.label_smoothing, ctx.seed, cfg.distill_weight)
    try:  # every slice is checked against the masked model here, before the training, not after it
        views, passes = width_views(model, cfg.widths, shape, data.num_classes, cfg.ignore, data.val.take(64)[0]), "views"
        ctx.log.info("nested: the narrow widths train as smaller networks on views of the full weights")
    except NotLeading as e:
        views, passes = None, "masks"
        ctx.log.info(f"nested: {e}, so the narrow widths train as the full network with masked channels (each pass costs a full one)")
    if views is not None:
        trained = train(model, cfg.train, ctx, sandwich(model, views, *terms), desc="nested")
    else:
        with channel_groups(model, shape, data.num_classes, cfg.ignore) as (graph, groups), WidthMasks(graph, groups) as masks:
            trained = train(model, cfg.train, ctx, sandwich(model, masks.runner(model), *terms), desc="nested")
    rows = [slice_and_save(cfg, model, width, ctx) for width in cfg.widths]
    ctx.record_training(state, trained, "nested", widths=rows, narrow_passes=passes)
    state.widths = [{k: r[k] for k in ("width", "checkpoint", "params", "macs")} for r in rows]
    for r in rows:
        ctx.log.info(f"nested width {r['width']:g}: {r['params']:,} params, {r['macs'] / 1e6:.2f} M MACs, val acc {r['val_accuracy']:.4f}, test acc {r['accuracy']:.4f}")
    return state


def slice_and_save(cfg: NestedConfig, model: torch.nn.Module, width: float, ctx: StageContext) -> dict:
    """The width as a smaller model with its own BatchNorm statistics, its checkpoint and its figures.
    The full width is the stage's model itself, recalibrated the same way."""
    data, shape = ctx.data, ctx.data.input_shape
    check = data.val.take(64)[0]
    sliced = model if width == 1 else slice_width(model, width, shape, data.num_classes, cfg.ignore, check)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(ctx.seed))[: cfg.recalibration_batches * data.batch_size]
    recalibrate_batchnorm(sliced, (x for x, _, _ in data.train.batches(data.batch_size, order)))
    path, ref = ctx.artifact(f"model-w{width:g}.pt")
    save_model(sliced, path)
    return {
        "width": width, "checkpoint": ref, **size_figures(sliced, shape),
        "val_accuracy": round(ctx.score(sliced, "val"), 5),
        "accuracy": round(ctx.score(sliced, "test"), 5),
    }
