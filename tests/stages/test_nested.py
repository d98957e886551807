import math

import pytest
import torch
from pydantic import ValidationError

from pipeline.core.checkpoints import load_model
from pipeline.core.errors import StageError
from pipeline.models import ModelConfig, build_model
from pipeline.stages.nested import NestedConfig, run
from pipeline.training.loop import TrainConfig
from pipeline.training.objectives import Batch
from pipeline.widths.groups import channel_groups
from pipeline.widths.masks import WidthMasks
from pipeline.widths.sandwich import sandwich
from tests.stages.helpers import make_context, trained_state


def test_widths_are_a_list_in_range_or_a_count():
    assert NestedConfig(widths=4).widths == [0.25, 0.5, 0.75, 1.0]
    assert NestedConfig(widths=[1.0, 0.5]).widths == [0.5, 1.0]
    for bad, message in [(1, "at least 2"), ([0.5, 1.2], r"in \(0, 1\]"), ([0, 1.0], r"in \(0, 1\]"), ([0.5, 0.5], "repeat"), ([1.0], "at least one width below 1")]:
        with pytest.raises(ValidationError, match=message):
            NestedConfig(widths=bad)


def test_sandwich_trains_the_narrow_widths_from_the_full_one_without_moving_running_statistics():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    with channel_groups(model, (1, 28, 28), 10) as (graph, groups), WidthMasks(graph, groups) as masks:
        objective = sandwich(model, masks.runner(model), [0.25, 0.5, 0.75, 1.0], sampled=1, temperature=2.0, label_smoothing=0.0, seed=0)
        model.train()
        logits = model(x).detach().requires_grad_()  # a leaf, to see whether the teacher side gets a gradient
        statistics = [m.running_mean.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        terms = objective(Batch(x=x, y=y, idx=torch.arange(16), logits=logits, epoch=0, epochs=1))
    assert set(terms) == {"ce", "inplace_kd"} and all(math.isfinite(t.item()) for t in terms.values())
    assert terms["inplace_kd"].item() > 0
    after = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(statistics, after)), "the narrow passes leave the running statistics to the full width"
    model.zero_grad()
    terms["inplace_kd"].backward()
    first = model.features[0][0].weight.grad
    assert first[:2].abs().sum() > 0, "the leading channels learn from the narrow passes"
    assert logits.grad is None, "the full width's prediction is a detached target"


def test_nested_stage_slices_each_width_into_a_checkpoint(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0)
    state = run(NestedConfig(widths=[0.25, 0.5, 1.0], train=TrainConfig(epochs=1, lr=0.01)), state, ctx)
    rows = ctx.metrics["widths"]
    assert [r["width"] for r in rows] == [0.25, 0.5, 1.0] and [w["width"] for w in state.widths] == [0.25, 0.5, 1.0]
    assert rows[0]["params"] < rows[1]["params"] < rows[2]["params"] == ctx.metrics["params"]
    assert ctx.metrics["history"][-1]["terms"]["inplace_kd"] > 0
    assert ctx.metrics["narrow_passes"] == "views", "tiny_cnn's widths keep leading blocks: they train as smaller networks"
    for row in rows:
        sliced = load_model(build_model(ModelConfig(name="tiny_cnn"), 1, 10), ctx.resolve(row["checkpoint"]))
        assert sum(p.numel() for p in sliced.parameters()) == row["params"]
        assert sliced(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert 0 <= row["val_accuracy"] <= 1 and 0 <= row["accuracy"] <= 1
    assert state.model.features[0][0].out_channels == 8, "the stage's model stays at full width"


def test_nested_refuses_a_model_with_heads(tmp_path):
    from pipeline.stages.aux_heads import AuxHeadsConfig
    from pipeline.stages.aux_heads import run as attach

    ctx = make_context(tmp_path)
    state = attach(AuxHeadsConfig(kind="linear", train=TrainConfig(epochs=0)), trained_state(ctx, epochs=0), ctx)
    with pytest.raises(StageError, match="put it before aux_heads"):
        run(NestedConfig(train=TrainConfig(epochs=1)), state, ctx)


def test_the_distillation_weight_scales_the_narrow_widths_term():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10).train()
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    with channel_groups(model, (1, 28, 28), 10) as (graph, groups), WidthMasks(graph, groups) as masks:
        logits = model(x).detach()
        batch = Batch(x=x, y=y, idx=torch.arange(8), logits=logits, epoch=0, epochs=1)
        full, tenth = (sandwich(model, masks.runner(model), [0.5, 1.0], 0, 1.0, 0.0, seed=0, weight=w)(batch)["inplace_kd"] for w in (1.0, 0.1))
    assert torch.allclose(tenth, 0.1 * full, rtol=1e-3)
