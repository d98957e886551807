"""`train`: train a baseline, or fine-tune the model the recipe loaded, with the shared training loop."""

from __future__ import annotations

from pipeline.evaluation import model_metrics
from pipeline.stages import StageContext, stage
from pipeline.state import ModelState
from pipeline.training import TrainConfig, fit


@stage("train", TrainConfig, changes_model=True)
def run(cfg: TrainConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Train the model; test accuracy, params and MACs go into the metrics.

    Before any compression, the result becomes the reference that accuracy-drop budgets compare against.
    """
    history = fit(
        state.model, ctx.data, cfg, device=ctx.device, generator=ctx.generator, desc="train", quiet=ctx.quiet, log=ctx.log.info
    )
    state.model.cpu()
    metrics = model_metrics(state.model, ctx.data.test, ctx.data.input_shape)
    ctx.metrics.update(metrics, history=history)
    if not state.compressed:
        state.reference = {**metrics, "source": "train"}
    state.model_changed()
    return state
