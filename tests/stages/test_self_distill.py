import math

import pytest

from pipeline.core.errors import StageError
from pipeline.stages.aux_heads import AuxHeadsConfig
from pipeline.stages.aux_heads import run as attach
from pipeline.stages.self_distill import SelfDistillConfig, run
from pipeline.training.loop import TrainConfig
from tests.stages.helpers import make_context, trained_state


def with_heads(ctx, kind="bottleneck"):
    return attach(AuxHeadsConfig(kind=kind, train=TrainConfig(epochs=1, lr=0.01)), trained_state(ctx, epochs=1), ctx)


@pytest.mark.parametrize("kind", ["bottleneck", "linear"])
def test_byot_loss_terms_are_present_and_finite(tmp_path, kind):
    ctx = make_context(tmp_path)
    state = with_heads(ctx, kind)
    state = run(SelfDistillConfig(mode="byot", train=TrainConfig(epochs=2, lr=0.005)), state, ctx)
    terms = ctx.metrics["history"][-1]["terms"]
    assert set(terms) == {"ce", "ce_head1", "kd_head1", "hint_head1", "ce_head2", "kd_head2", "hint_head2"}
    assert all(math.isfinite(v) for v in terms.values())
    assert terms["kd_head1"] > 0 and terms["hint_head1"] > 0
    assert ctx.metrics["heads_accuracy"]["final"] == ctx.metrics["accuracy"]


def test_pskd_mixes_in_previous_predictions_after_the_first_epoch(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=1)
    state = run(SelfDistillConfig(mode="pskd", train=TrainConfig(epochs=3, lr=0.005)), state, ctx)
    history = ctx.metrics["history"]
    assert [set(h["terms"]) for h in history] == [{"ce_pskd"}] * 3
    assert all(math.isfinite(h["terms"]["ce_pskd"]) for h in history)
    assert ctx.metrics["accuracy"] > 0.3


def test_byot_without_heads_says_to_add_aux_heads(tmp_path):
    ctx = make_context(tmp_path, train=128)
    with pytest.raises(StageError, match="add an aux_heads stage before it"):
        run(SelfDistillConfig(mode="byot", train=TrainConfig(epochs=1)), trained_state(ctx, epochs=0), ctx)
