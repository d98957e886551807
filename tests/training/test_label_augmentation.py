import math

import onnx
import pytest
import torch

from exporters import export_onnx
from pipeline.core.errors import StageError
from pipeline.stages.self_distill import SelfDistillConfig, run
from pipeline.models.heads import HeadedModel
from pipeline.training.label_augmentation import ROTATIONS, SlaConfig, SlaTerms, aggregate, rotations
from pipeline.training.loop import TrainConfig
from pipeline.training.objectives import Batch
from tests.stages.helpers import make_context, trained_state


def test_aggregate_is_the_softmax_of_the_mean_own_rotation_logit():
    classes, n = 3, 5
    joint = torch.randn(ROTATIONS, n, classes * ROTATIONS)
    expected = torch.zeros(n, classes)
    for b in range(n):
        for c in range(classes):
            expected[b, c] = sum(joint[t, b, c * ROTATIONS + t] for t in range(ROTATIONS)) / ROTATIONS
    assert torch.allclose(aggregate(joint, classes), torch.softmax(expected, 1), atol=1e-6)


def test_rotations_are_the_four_right_angles():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    turned = rotations(x)
    assert [t[0, 0].tolist() for t in turned] == [[[0, 1], [2, 3]], [[1, 3], [0, 2]], [[3, 2], [1, 0]], [[2, 0], [3, 1]]]


def test_the_joint_head_gets_gradients_and_the_terms_are_finite(tmp_path):
    ctx = make_context(tmp_path, train=128)
    state = trained_state(ctx, epochs=0)
    with HeadedModel(state.model) as view:
        terms_of = SlaTerms(view, SlaConfig(), "fc", 10, ctx.data.input_shape)
        x, y = ctx.data.train.take(16)
        terms = terms_of(Batch(x=x, y=y, idx=torch.arange(16), logits=view(x), epoch=0, epochs=1))
        assert set(terms) == {"sla_joint", "sla_sd"} and all(math.isfinite(v.item()) for v in terms.values())
        sum(terms.values()).backward()
        assert view.adapters["sla_joint"].weight.grad.abs().sum() > 0
        assert state.model.fc.weight.grad.abs().sum() > 0, "the ordinary head learns from the aggregated prediction"


def test_sla_mode_trains_and_exports_only_the_ordinary_head(tmp_path):
    ctx = make_context(tmp_path, train=256)
    state = trained_state(ctx, epochs=1)
    keys_before = set(state.model.state_dict())
    state = run(SelfDistillConfig(mode="sla", train=TrainConfig(epochs=2, lr=0.005)), state, ctx)
    history = ctx.metrics["history"]
    assert [set(h["terms"]) for h in history] == [{"ce", "sla_joint", "sla_sd"}] * 2
    assert all(math.isfinite(v) for h in history for v in h["terms"].values())
    assert set(state.model.state_dict()) == keys_before, "the joint head is not part of the model"
    path = tmp_path / "m.onnx"
    export_onnx(state.model, path, ctx.data.test.take(32)[0])
    graph = onnx.load(str(path)).graph
    assert len(graph.output) == 1 and graph.output[0].type.tensor_type.shape.dim[1].dim_value == 10
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == list(ctx.data.input_shape)


def test_sla_refuses_non_square_images(tmp_path):
    ctx = make_context(tmp_path, train=64)
    state = trained_state(ctx, epochs=0)
    with HeadedModel(state.model) as view, pytest.raises(StageError, match="square"):
        SlaTerms(view, SlaConfig(), "fc", 10, (1, 28, 32))
