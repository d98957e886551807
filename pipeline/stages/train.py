"""`train`: train a baseline, or fine-tune the model the recipe loaded, with the shared training loop."""

from __future__ import annotations

from pipeline.core.state import ModelState
from pipeline.stages.base import StageContext, stage
from pipeline.models.heads import headed
from pipeline.training.loop import TrainConfig
from pipeline.training.session import train


@stage("train", TrainConfig, changes_model=True, trains=True, tasks=("classification", "detection"))
def run(cfg: TrainConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Train the model (and its auxiliary heads, if an earlier stage attached some); test accuracy, params and MACs go into the metrics.

    Before any compression, the result becomes the reference that accuracy-drop budgets compare against.
    """
    with headed(state) as view:
        trained = train(view, cfg, ctx, ctx.task.objective(view, cfg), desc="train")
    ctx.record_training(state, trained, "train")
    return state
