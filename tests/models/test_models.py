import pytest
import torch

from pipeline.core.errors import CheckpointError, UserError
from pipeline.models import ZOO, ModelConfig, build_model


@pytest.mark.parametrize("name", ["tiny_cnn", "ds_cnn", "resnet8", "resnet20", "mobilenetv2"])
def test_zoo_models_classify_small_inputs(name):
    model = build_model(ModelConfig(name=name), in_channels=1, num_classes=10).eval()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_mobilenetv2_has_depthwise_convolutions():
    model = build_model(ModelConfig(name="mobilenetv2"), 1, 10)
    assert any(isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1 for m in model.modules())


def test_user_factory_with_kwargs():
    model = build_model(ModelConfig(factory="pipeline.models.zoo:tiny_cnn", kwargs={"num_classes": 3}), 1, 10)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 3)


@pytest.mark.parametrize("spec", ["no_colon", "nonexistent.module:f", "pipeline.models.zoo:missing"])
def test_bad_factory_is_a_user_error(spec):
    with pytest.raises(UserError, match="model.factory"):
        build_model(ModelConfig(factory=spec), 1, 10)


def test_name_and_factory_are_exclusive():
    with pytest.raises(ValueError, match="exactly one"):
        ModelConfig(name="tiny_cnn", factory="a:b")


def test_unknown_zoo_model_lists_known():
    with pytest.raises(ValueError, match="known: ds_cnn, mobilenetv2, resnet20, resnet8, shufflenetv2, tiny_cnn"):
        ModelConfig(name="vgg")


def test_checkpoint_loads_and_mismatch_is_explained(tmp_path):
    source = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    good = tmp_path / "good.pt"
    torch.save({"state_dict": source.state_dict()}, good)
    loaded = build_model(ModelConfig(name="tiny_cnn", checkpoint=str(good)), 1, 10)
    assert torch.equal(loaded.fc.weight, source.fc.weight)

    wider = tmp_path / "wider.pt"
    torch.save(build_model(ModelConfig(name="tiny_cnn", kwargs={"widths": [8, 16, 32, 64]}), 1, 10).state_dict(), wider)
    with pytest.raises(CheckpointError, match=r"shape mismatches: features.3.0.weight \(64, 32, 3, 3\) vs model \(32, 32, 3, 3\)"):
        build_model(ModelConfig(name="tiny_cnn", checkpoint=str(wider)), 1, 10)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save(build_model(ModelConfig(name="tiny_cnn"), 1, 10), path)  # a whole module, not a state_dict
    with pytest.raises(CheckpointError, match="weights_only=True"):
        build_model(ModelConfig(name="tiny_cnn", checkpoint=str(path)), 1, 10)


def test_zoo_registry_names():
    assert set(ZOO.names()) == {"tiny_cnn", "ds_cnn", "resnet8", "resnet20", "mobilenetv2", "shufflenetv2", "tiny_det"}


def test_ds_cnn_width_scales_every_block_keeping_at_least_four_channels():
    from pipeline.models.zoo import ds_cnn

    def widths(model):
        return [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]

    assert widths(ds_cnn(width=1.0)) == widths(ds_cnn())
    assert widths(ds_cnn(stem=16, widths=(32, 64), strides=(2, 2), width=0.5)) == [8, 8, 16, 16, 32]
    assert min(widths(ds_cnn(width=0.01))) == 4, "at least 4 channels"
    with pytest.raises(ValueError, match="width 0 must be above 0"):
        ds_cnn(width=0)
