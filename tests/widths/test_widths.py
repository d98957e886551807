import numpy as np
import onnx
import pytest
import torch
from torch import nn

from exporters import export_onnx
from pipeline.core.errors import StageError
from pipeline.models import ModelConfig, build_model
from pipeline.pruning.pruner import IMPORTANCE
from pipeline.widths.groups import channel_groups, kept
from pipeline.widths.masks import WidthMasks
from pipeline.widths.ordering import order_channels
from pipeline.widths.slicing import recalibrate_batchnorm, slice_width
from pipeline.widths.views import NotLeading, width_views

SHAPE = (1, 28, 28)


def model_with_statistics(name: str) -> nn.Module:
    """A zoo model whose BatchNorm layers are not the identity, so a misplaced channel shows."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name), 1, 10).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


def flattening_model() -> nn.Module:
    """Feature maps flattened into a hidden linear layer: one channel is 36 features there."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 2), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 6, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 20), nn.ReLU(), nn.Linear(20, 10)
    ).eval()


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet8", "mobilenetv2", "flatten"])
def test_ordering_keeps_the_function_and_puts_the_most_important_channels_first(name):
    model = flattening_model() if name == "flatten" else model_with_statistics(name)
    x = torch.randn(8, *SHAPE)
    with torch.no_grad():
        before = model(x)
    with channel_groups(model, SHAPE, 10) as (graph, groups):
        assert order_channels(graph, groups) > 0
        for group in groups:
            scores = IMPORTANCE["magnitude"]()(group)
            assert torch.all(scores[:-1] >= scores[1:] - 1e-6), "each group's channels are sorted, most important first"
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-5), "reordering changes where channels sit, not what the network computes"


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet8", "mobilenetv2", "flatten"])
def test_each_width_slices_into_a_smaller_model_with_one_output(tmp_path, name):
    model = flattening_model() if name == "flatten" else model_with_statistics(name)
    x = torch.randn(8, *SHAPE)
    parameters = []
    for width in (0.25, 0.5, 1.0):
        sliced = slice_width(model, width, SHAPE, 10, [], x)  # raises unless it computes what the masked model does
        path = tmp_path / f"{width}.onnx"
        export_onnx(sliced, path, x)
        graph = onnx.load(str(path)).graph
        assert len(graph.output) == 1 and [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == list(SHAPE)
        parameters.append(sum(int(np.prod(t.dims)) for t in graph.initializer))
    assert parameters[0] < parameters[1] < parameters[2]


def test_masks_run_a_width_and_leave_nothing_behind():
    model = model_with_statistics("tiny_cnn")
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        full = model(x)
    seen = []
    with channel_groups(model, SHAPE, 10) as (graph, groups), WidthMasks(graph, groups) as masks:
        handle = model.features[0][0].register_forward_hook(lambda m, i, o: seen.append(o.detach()))  # after the mask's hook
        with torch.no_grad():
            assert torch.equal(model(x), full), "width 1 is the model itself"
            with masks.at(0.5):
                half = model(x)
        handle.remove()
    with torch.no_grad():
        assert torch.equal(model(x), full), "closing the masks removes their hooks"
    assert not torch.allclose(half, full)
    assert torch.count_nonzero(seen[1][:, kept(8, 0.5) :]) == 0 and torch.count_nonzero(seen[1][:, : kept(8, 0.5)]) > 0


def test_a_layer_that_breaks_slicing_is_named_and_can_be_ignored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, 2), nn.Sigmoid(), nn.Conv2d(8, 6, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10)).eval()
    x = torch.randn(4, *SHAPE)
    with pytest.raises(StageError, match=r"width 0.5 .* 1 \(Sigmoid\) turns zeroed channels into non-zero ones.*nested.ignore"):
        slice_width(model, 0.5, SHAPE, 10, [], x)
    sliced = slice_width(model, 0.5, SHAPE, 10, ["0"], x)
    assert sliced[0].out_channels == 8 and sliced[2].out_channels == 3


def test_an_unsupported_layer_inside_a_group_is_named():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    with channel_groups(model, SHAPE, 10) as (graph, groups), pytest.raises(StageError, match="cannot reorder the channels of a GroupNorm in the channel group of 0"):
        order_channels(graph, groups)


def test_batchnorm_is_recalibrated_to_the_plain_average_of_its_batches():
    norm = nn.BatchNorm2d(3)
    model = nn.Sequential(norm)
    batches = [torch.randn(16, 3, 4, 4) * s + s for s in (1.0, 2.0, 3.0)]
    recalibrate_batchnorm(model, batches)
    expected = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(norm.running_mean, expected, atol=1e-5)
    assert not model.training and norm.momentum == 0.1


class TwoBranches(nn.Module):
    """Two convolutions concatenated: a width keeps a block of each branch, so the next layer's kept
    inputs are not its leading ones."""

    def __init__(self):
        super().__init__()
        self.left, self.right = nn.Conv2d(1, 4, 3, 2), nn.Conv2d(1, 4, 3, 2)
        self.mix = nn.Conv2d(8, 6, 3, 2)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = torch.relu(self.mix(torch.cat([torch.relu(self.left(x)), torch.relu(self.right(x))], 1)))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet8", "mobilenetv2", "flatten"])
def test_a_narrow_pass_on_views_computes_and_trains_what_the_masked_pass_does(name):
    model = flattening_model() if name == "flatten" else model_with_statistics(name)
    x = torch.randn(8, *SHAPE)
    with channel_groups(model, SHAPE, 10) as (graph, groups):
        order_channels(graph, groups)
    views = width_views(model, [0.25, 0.5, 1.0], SHAPE, 10, [], x)
    assert sorted(views.skeletons) == [0.25, 0.5]
    full_parameters = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in views.skeletons[0.25][0].parameters()) < full_parameters / 4, "the narrow pass runs a smaller network"
    model.train()
    for width in (0.25, 0.5):
        model.zero_grad()
        on_views = views(width, x)
        on_views.square().mean().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad()
        with channel_groups(model, SHAPE, 10) as (graph, groups), WidthMasks(graph, groups) as masks, masks.at(width):
            masked = model(x)
        masked.square().mean().backward()
        assert torch.allclose(on_views, masked, atol=1e-4), "the same logits"
        for n, p in model.named_parameters():
            assert torch.allclose(grads[n], p.grad, atol=1e-5), f"the same gradient in {n}"
        assert any(g.abs().sum() > 0 for g in grads.values())
    statistics = [b.clone() for b in model.buffers()]
    views(0.25, x)
    assert all(torch.equal(a, b) for a, b in zip(statistics, model.buffers())), "a narrow pass leaves the running statistics alone"
    model.eval()
    with channel_groups(model, SHAPE, 10) as (graph, groups), WidthMasks(graph, groups) as masks, masks.at(0.5), torch.no_grad():
        assert torch.allclose(views(0.5, x), model(x), atol=1e-4), "in eval mode too, on the model's running statistics"


def test_views_refuse_channels_that_are_not_a_leading_block():
    torch.manual_seed(0)
    with pytest.raises(NotLeading, match=r"at width 0.5, mix.weight keeps channels that are not its leading ones"):
        width_views(TwoBranches(), [0.5, 1.0], SHAPE, 10, [], torch.randn(4, *SHAPE))
