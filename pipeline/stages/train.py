"""`train`: train a baseline, or fine-tune the model the recipe loaded, with the shared training loop."""

from __future__ import annotations

from pipeline.core.state import ModelState
from pipeline.stages.base import StageContext, stage
from pipeline.training.evaluation import model_metrics
from pipeline.training.heads import head_accuracy, supervised_objective
from pipeline.training.loop import TrainConfig, fit


@stage("train", TrainConfig, changes_model=True)
def run(cfg: TrainConfig, state: ModelState, ctx: StageContext) -> ModelState:
    """Train the model (and its auxiliary heads, if an earlier stage attached some); test accuracy, params and MACs go into the metrics.

    Before any compression, the result becomes the reference that accuracy-drop budgets compare against.
    """
    with state.headed() as view:
        history = fit(
            view, ctx.data, cfg, device=ctx.device, generator=ctx.generator, desc="train", quiet=ctx.quiet,
            objective=supervised_objective(view, cfg.label_smoothing), log=ctx.log.info,
        )
        view.cpu()
        if state.heads:
            ctx.metrics["heads_accuracy"] = head_accuracy(view, ctx.data.test)
    metrics = model_metrics(state.model, ctx.data.test, ctx.data.input_shape)
    ctx.metrics.update(metrics, history=history)
    state.weights_trained(metrics, "train")
    return state
