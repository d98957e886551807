import copy

import pytest
import torch
import torch.nn.functional as F

from pipeline.core.checkpoints import save_model
from pipeline.core.errors import StageError
from pipeline.models import ModelConfig, build_model
from pipeline.stages.distill import DistillConfig, run
from pipeline.training.evaluation import accuracy
from pipeline.training.loop import TrainConfig
from tests.stages.helpers import make_context, trained_state


def kl_to(teacher, student, x):
    with torch.no_grad():
        return F.kl_div(F.log_softmax(student.eval()(x), 1), F.softmax(teacher.eval()(x), 1), reduction="batchmean").item()


def test_distillation_moves_the_student_toward_the_teacher(tmp_path):
    ctx = make_context(tmp_path)
    teacher = trained_state(ctx, epochs=4).model
    save_model(teacher, tmp_path / "teacher.pt")
    x = ctx.data.test.take(256)[0]
    before = kl_to(teacher, trained_state(ctx, epochs=0, widths=[8, 16, 16, 16]).model, x)
    after = {}
    for alpha in (0.0, 1.0):  # labels only vs teacher only, same student start, same steps
        cfg = DistillConfig(
            teacher=ModelConfig(name="tiny_cnn", checkpoint=str(tmp_path / "teacher.pt")),
            alpha=alpha,
            temperature=1.0,
            train=TrainConfig(epochs=3, lr=0.01),
        )
        ctx.metrics = {}
        ctx.generator.manual_seed(0)
        after[alpha] = kl_to(teacher, run(cfg, trained_state(ctx, epochs=0, widths=[8, 16, 16, 16]), ctx).model, x)
    assert after[1.0] < 0.7 * before
    assert after[1.0] < 0.8 * after[0.0], "the teacher's signal, not just training, brings the student closer"
    assert ctx.metrics["teacher"]["params"] > ctx.metrics["params"]


def test_feature_matching_through_an_adapter_when_widths_differ(tmp_path):
    ctx = make_context(tmp_path, train=256)
    teacher = trained_state(ctx, epochs=1).model  # last feature map: 32 channels; the student's: 16
    ctx.model_before = lambda name: copy.deepcopy(teacher)
    cfg = DistillConfig(teacher="before:train", feature_weight=0.5, train=TrainConfig(epochs=1))
    run(cfg, trained_state(ctx, epochs=0, widths=[8, 16, 16, 16]), ctx)
    terms = ctx.metrics["history"][-1]["terms"]
    assert set(terms) == {"ce", "kd", "feature"} and terms["feature"] > 0


def test_teacher_before_a_stage_comes_from_the_context(tmp_path):
    ctx = make_context(tmp_path)
    teacher = trained_state(ctx, epochs=2).model
    asked = []
    ctx.model_before = lambda name: asked.append(name) or copy.deepcopy(teacher)
    state = run(DistillConfig(teacher="before:prune", train=TrainConfig(epochs=1)), trained_state(ctx, epochs=0), ctx)
    assert asked == ["prune"]
    assert ctx.metrics["teacher"]["source"] == "before:prune"
    assert ctx.metrics["teacher"]["accuracy"] == round(accuracy(teacher, ctx.data.test), 5), "the teacher measured is the one the runner gave"
    assert state.model is not teacher


def test_teacher_with_other_classes_is_a_clear_error(tmp_path):
    ctx = make_context(tmp_path, train=128)
    other = build_model(ModelConfig(name="tiny_cnn"), 1, 7)
    ctx.model_before = lambda name: other
    with pytest.raises(StageError, match=r"teacher outputs shape \[2, 7\] but the student outputs \[2, 10\]"):
        run(DistillConfig(teacher="before:train", train=TrainConfig(epochs=1)), trained_state(ctx, epochs=0), ctx)


@pytest.mark.parametrize("teacher, message", [("prune", "before:<stage name>"), ({"name": "tiny_cnn"}, "needs `checkpoint:`")])
def test_bad_teacher_specs(teacher, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(teacher=teacher)


def test_missing_teacher_checkpoint_names_the_field(tmp_path):
    ctx = make_context(tmp_path, train=128)
    cfg = DistillConfig(teacher={"name": "resnet20", "checkpoint": str(tmp_path / "nope.pt")})
    with pytest.raises(StageError, match=r"distill\.teacher\.checkpoint: .*nope\.pt does not exist"):
        run(cfg, trained_state(ctx, epochs=0), ctx)
