import pytest
import torch

from pipeline.training.augment import Augment, augment, mixed

ONE = torch.ones(1, 1, 1, 1)


def run(x, generator_seed=0, mean=ONE, std=ONE, **cfg):
    return augment(x, Augment(**{"flip": False, "shift": 0, **cfg}), mean, std, torch.Generator().manual_seed(generator_seed))


def test_augment_shifts_in_background_and_flips():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 0:2] = 5.0  # a bright blob on the left edge
    out = run(x, flip=True, shift=2)  # mean 1, std 1: black is -1 once normalised
    assert out.shape == x.shape
    assert (out == -1.0).any(), "shifted-in pixels take the background value"
    assert (out[:, :, :, 6:] == 5.0).any(), "some samples are flipped to the right edge"


def test_with_flip_and_shift_off_the_defaults_change_nothing():
    x = torch.randn(8, 3, 12, 12)
    assert torch.equal(run(x), x)


def test_resized_crop_zooms_in_and_keeps_the_size():
    x = torch.zeros(16, 3, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0  # a centred square
    out = run(x, resized_crop=[0.3, 0.5])
    assert out.shape == x.shape
    assert (out > 0.5).float().mean() > (x > 0.5).float().mean(), "a crop of a third of the area enlarges the square"


def test_color_jitter_changes_brightness_within_range_per_sample():
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.2, 0.2]).view(1, 3, 1, 1)
    pixels = torch.rand(32, 3, 8, 8) * 0.5 + 0.25
    out = run((pixels - mean) / std, mean=mean, std=std, color_jitter=0.3) * std + mean
    assert out.min() >= 0 and out.max() <= 1
    ratio = out.mean(dim=(1, 2, 3)) / pixels.mean(dim=(1, 2, 3))
    assert ratio.min() < 0.95 and ratio.max() > 1.05 and ratio.min() > 0.6 and ratio.max() < 1.4


def test_random_erasing_blanks_a_rectangle_to_the_mean():
    x = torch.full((40, 1, 10, 10), 3.0)
    out = run(x, erasing=0.5)
    erased = (out == 0).flatten(1).any(1)
    assert 5 < int(erased.sum()) < 35, "about half the samples"
    areas = (out == 0).flatten(1).float().mean(1)[erased]
    assert areas.min() >= 0.01 and areas.max() <= 0.25


def test_augment_is_reproducible_from_the_seed():
    x = torch.randn(8, 3, 12, 12)
    cfg = dict(flip=True, shift=2, resized_crop=[0.5, 1.0], color_jitter=0.2, erasing=0.5)
    assert torch.equal(run(x, 3, **cfg), run(x, 3, **cfg)) and not torch.equal(run(x, 3, **cfg), run(x, 4, **cfg))


def test_a_bad_crop_range_is_a_config_error():
    with pytest.raises(ValueError, match=r"0 < min <= max <= 1"):
        Augment(resized_crop=[0.8, 0.5])


def test_no_mixing_by_default():
    x, y = torch.randn(8, 1, 6, 6), torch.arange(8)
    out, mix = mixed(x, y, Augment(), torch.Generator().manual_seed(0))
    assert out is x and mix is None


def test_mixup_blends_pairs_and_weighs_their_labels():
    x, y = torch.randn(16, 1, 6, 6), torch.arange(16)
    out, mix = mixed(x, y, Augment(mixup=0.4), torch.Generator().manual_seed(0))
    assert 0 < mix.lam < 1 and sorted(mix.y.tolist()) == list(range(16))
    partner = mix.y  # labels are the indices here
    assert torch.allclose(out, mix.lam * x + (1 - mix.lam) * x[partner])


def test_cutmix_pastes_a_box_and_weighs_labels_by_the_area_kept():
    x, y = torch.zeros(8, 1, 10, 10), torch.arange(8)
    x += y.view(-1, 1, 1, 1).float()  # each image is filled with its own index
    out, mix = mixed(x, y, Augment(cutmix=1.0), torch.Generator().manual_seed(1))
    kept = (out == x).flatten(1).float().mean(1)
    own = y != mix.y
    assert torch.allclose(kept[own], torch.full_like(kept[own], mix.lam)), "the label weight is the share of pixels kept"


def test_mixed_labels_in_the_loss_and_the_targets():
    from pipeline.training.objectives import Batch, Mix

    logits, y, other = torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    batch = Batch(x=torch.zeros(4), y=y, idx=torch.arange(4), logits=logits, epoch=0, epochs=1, mix=Mix(other, 0.7))
    expected = 0.7 * torch.nn.functional.cross_entropy(logits, y) + 0.3 * torch.nn.functional.cross_entropy(logits, other)
    assert torch.allclose(batch.ce(logits), expected)
    targets = batch.targets(3, label_smoothing=0.1)
    assert torch.allclose(targets.sum(1), torch.ones(4)) and targets[0, 0] > targets[0, 1] > targets[0, 2]


def test_training_runs_with_mixup_and_cutmix():
    from pipeline.data import DataConfig, load_data
    from pipeline.models import ModelConfig, build_model
    from pipeline.training.loop import TrainConfig, fit

    data = load_data(DataConfig(train_subset=256, test_subset=64, batch_size=64), seed=0)
    model = build_model(ModelConfig(name="tiny_cnn", kwargs={"widths": [8, 8, 16, 16]}), 1, 10)
    cfg = TrainConfig(epochs=2, lr=0.01, augment={"mixup": 0.2, "cutmix": 1.0})
    history = fit(model, data, cfg, device=torch.device("cpu"), generator=torch.Generator().manual_seed(0))
    assert len(history) == 2 and history[-1]["loss"] < history[0]["loss"] * 1.5


@pytest.mark.parametrize("side, shift", [(12, 1), (28, 2), (32, 2), (64, 5), (224, 16)])
def test_the_default_shift_scales_with_the_image(side, shift):
    from pipeline.training.augment import default_shift

    assert default_shift(side, side) == shift
    x = torch.zeros(256, 1, side, side)
    x[:, :, :, side // 2] = 5.0  # one bright column in the middle
    out = run(x, shift=None)
    columns = (out == 5.0).any(2).flatten(1).float().argmax(1) - side // 2
    assert int(columns.abs().max()) == shift, "the widest move is the default shift"
