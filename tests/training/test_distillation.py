import pytest
import torch

from pipeline.training.distillation import Distillation, KDConfig, binary_kl_norm
from pipeline.models.heads import HeadedModel
from pipeline.training.objectives import Batch
from tests.stages.helpers import make_context, trained_state


def test_binary_kl_norm_is_zero_at_the_teacher_and_follows_its_definition():
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    assert binary_kl_norm(t, t, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    d = torch.sigmoid((s - t) / 2.0)
    expected = (0.5 * torch.log(0.5 / d) + 0.5 * torch.log(0.5 / (1 - d))).sum() / 4 * 4.0
    assert binary_kl_norm(s, t, 2.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_dual_head_kd_trains_a_second_head_that_leaves_with_the_view(tmp_path):
    ctx = make_context(tmp_path, train=128)
    student, teacher = trained_state(ctx, epochs=0).model, trained_state(ctx, epochs=1).model
    keys = set(student.state_dict())
    with HeadedModel(student) as view:
        kd = Distillation(KDConfig(dual_head_weight=1.0), teacher, view, ctx.data.input_shape, torch.device("cpu"), 0.0)
        x, y = ctx.data.train.take(16)
        terms = kd.objective(Batch(x=x, y=y, idx=torch.arange(16), logits=view(x), epoch=0, epochs=1))
        assert {"ce", "kd", "dual_head"} <= set(terms) and all(torch.isfinite(v) for v in terms.values())
        terms["dual_head"].backward()
        assert view.adapters["dual_head"].weight.grad.abs().sum() > 0
        assert student.fc.weight.grad is None, "the auxiliary head's signal reaches the features, not the exported classifier"
        assert student.features[0][0].weight.grad.abs().sum() > 0
    assert set(student.state_dict()) == keys
