"""Every figure a stage reports or chooses by is the recipe's metric (`StageContext.score`), for a
model and for a file in any runtime, in every stage: prune's rounds and recovery included."""

import numpy as np
import pytest

from pipeline.stages import export, prune
from pipeline.training.loop import TrainConfig
from tests.stages.helpers import make_context, trained_state


def share_predicted_as_class_0(logits: np.ndarray, labels: np.ndarray) -> float:
    """A metric no top-1 accuracy equals by chance here: what share of samples the model calls class 0."""
    return float((logits.argmax(1) == 0).mean()) + 1.0  # + 1: out of top-1's range, so a mix-up cannot hide


@pytest.fixture
def scored(tmp_path):
    ctx = make_context(tmp_path, train=300, test=100)
    state = trained_state(ctx, epochs=1)
    ctx.metric = share_predicted_as_class_0
    return ctx, state


def test_a_model_and_its_file_score_by_the_recipe_metric_on_the_split_asked(scored):
    ctx, state = scored
    state = export.run(export.ExportConfig(parity_samples=32), state, ctx)
    onnx_file = ctx.resolve(state.artifacts["onnx_fp32"])
    for split in ("val", "test"):
        assert ctx.score(state.model, split) >= 1.0 and ctx.score(onnx_file, split) >= 1.0
        assert ctx.score(onnx_file, split) == pytest.approx(ctx.score(state.model, split), abs=0.02)
    assert ctx.metrics["accuracy"] >= 1.0 and ctx.metrics["val_accuracy"] >= 1.0


def test_prune_rounds_and_the_pruned_figures_use_the_recipe_metric(scored):
    ctx, state = scored
    prune.run(prune.PruneConfig(target={"remove_channels": 0.5}, steps=2, finetune=TrainConfig(epochs=1, lr=0.01)), state, ctx)
    assert all(r["val_accuracy"] >= 1.0 for r in ctx.metrics["rounds"]), ctx.metrics["rounds"]
    assert ctx.metrics["accuracy"] >= 1.0 and ctx.metrics["val_accuracy"] >= 1.0
