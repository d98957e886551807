import pytest
import torch

from pipeline.core.errors import StageError
from pipeline.models.zoo import mobilenetv2, resnet20, tiny_cnn
from pipeline.models.heads import auto_attach, build_heads, HeadedModel, make_specs
from pipeline.models.trace import trace_outputs


@pytest.mark.parametrize(
    "build, expected",
    [
        (tiny_cnn, ["features.0", "features.2"]),
        (resnet20, ["features.3", "features.6"]),
        (mobilenetv2, ["features.1", "features.3", "features.5"]),
    ],
)
def test_auto_attach_picks_the_output_of_each_stage(build, expected):
    assert auto_attach(trace_outputs(build(), (1, 28, 28))) == expected


def test_unknown_attach_point_lists_usable_modules():
    with pytest.raises(StageError, match=r"no module named 'features\.9'.*4-D output: features\.0\.0, .*features\.2, "):
        make_specs(tiny_cnn(), (1, 28, 28), ["features.9"], "linear", 0.3, 10)


def test_attach_after_a_vector_output_is_refused():
    with pytest.raises(StageError, match=r"4-D feature map.*'fc' outputs \[1, 10\]"):
        make_specs(tiny_cnn(), (1, 28, 28), ["fc"], "linear", 0.3, 10)


def test_one_weight_per_head_or_one_for_all():
    with pytest.raises(StageError, match="3 weights for 2 heads"):
        make_specs(tiny_cnn(), (1, 28, 28), "auto", "linear", [0.1, 0.2, 0.3], 10)


@pytest.mark.parametrize("kind", ["linear", "bottleneck"])
def test_headed_model_returns_backbone_logits_and_keeps_head_outputs(kind):
    model = tiny_cnn()
    specs = make_specs(model, (1, 28, 28), "auto", kind, 0.3, 10)
    x = torch.randn(3, 1, 28, 28)
    plain = model.eval()(x)
    with HeadedModel(model, build_heads(specs), specs) as view:
        view.eval()
        assert torch.equal(view(x), plain)
        assert set(view.head_logits) == {"head1", "head2"}
        assert all(v.shape == (3, 10) for v in view.head_logits.values())
        assert len(view.forward_all(x)) == 3
    assert not model._forward_hooks, "closing removes the hooks from the backbone"
