"""image_folder and dataset sources: read lazily, checked at the door, normalised per channel."""

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.core.errors import DataError
from pipeline.data import STATS_SAMPLE, DataConfig, load_data
from pipeline.data.contract import SAMPLED


def write_images(root, classes=("cat", "dog", "owl"), per_class=8, size=(10, 10), mode="RGB", fmt="png", seed=0):
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            pixels = np.clip(rng.normal(60 + 60 * k, 20, shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode).save(folder / f"{i}.{fmt}")


def folder_data(root, **cfg):
    return load_data(DataConfig(source="image_folder", path=str(root), workers=0, **cfg), seed=0)


def test_train_and_test_folders_of_rgb_images(tmp_path):
    write_images(tmp_path / "train", per_class=10)
    write_images(tmp_path / "test", per_class=4, fmt="jpg", seed=1)
    data = folder_data(tmp_path)
    assert data.class_names == ["cat", "dog", "owl"] and data.input_shape == (3, 10, 10)
    assert len(data.train) + len(data.val) == 30 and len(data.test) == 12
    assert len(data.mean) == 3 and all(s > 0 for s in data.std)
    x, y = data.train.take()
    assert x.shape == (len(data.train), 3, 10, 10) and abs(float(x.mean())) < 0.3, "normalised with the training split's statistics"
    assert set(y.tolist()) <= {0, 1, 2}


def test_one_root_is_split_by_test_fraction_and_grey_is_one_channel(tmp_path):
    write_images(tmp_path, per_class=10, mode="L")
    data = folder_data(tmp_path, test_fraction=0.3)
    assert data.input_shape == (1, 10, 10) and len(data.test) == 9 and len(data.mean) == 1


def test_input_size_resizes_and_centre_crops_mixed_sizes(tmp_path):
    write_images(tmp_path / "train", size=(14, 10))
    write_images(tmp_path / "train", classes=("cat",), per_class=2, size=(20, 16), seed=3)
    write_images(tmp_path / "test", per_class=2, size=(12, 12))
    data = folder_data(tmp_path, input_size=8)
    assert data.input_shape == (3, 8, 8) and data.resize == {"shorter_side": 8, "center_crop": [8, 8], "interpolation": "bilinear"}
    data.train.take()


@pytest.mark.parametrize(
    "make, config, message",
    [
        (lambda r: write_images(r, per_class=2) or [p.unlink() for p in r.glob("*/*")] and None, {}, "no class subfolders with images"),
        (lambda r: (write_images(r / "train"), write_images(r / "test", classes=("cat", "dog", "emu"))), {}, "missing ['owl'], extra ['emu']"),
        (lambda r: write_images(r / "train"), {}, "has train/ but no test/ folder"),
        (lambda r: (write_images(r / "train", size=(10, 10)), write_images(r / "test", size=(12, 12))), {}, "but the training images are [3, 10, 10]"),
        (lambda r: None, {"path": "nowhere"}, "does not exist or is not a folder"),
    ],
)
def test_bad_folders_are_clear_errors(tmp_path, make, config, message):
    make(tmp_path)
    with pytest.raises(DataError) as refused:
        load_data(DataConfig(source="image_folder", workers=0, **{"path": str(tmp_path), **config}), seed=0)
    assert message in str(refused.value)


def test_a_truncated_image_is_named_or_skipped_and_counted(tmp_path):
    write_images(tmp_path / "train", per_class=10)
    write_images(tmp_path / "test", per_class=3)
    broken = tmp_path / "train" / "dog" / "5.png"
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(DataError, match=f"{broken} cannot be decoded as an image.*skip_unreadable"):
        data = folder_data(tmp_path)  # the training split's statistics already read it
        data.train.take()
        data.val.take()
    skipped = folder_data(tmp_path, skip_unreadable=True)
    assert "skipped 1 unreadable image(s), first " + str(broken) in skipped.description
    assert len(skipped.train) + len(skipped.val) == 29


def test_an_image_over_the_decompression_bomb_limit_is_named_or_skipped(tmp_path, monkeypatch):
    write_images(tmp_path / "train", per_class=10, size=(10, 10))
    write_images(tmp_path / "test", per_class=3, size=(10, 10))
    bomb = tmp_path / "train" / "dog" / "bomb.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 40x40 = 1,600 pixels: over twice the limit, so Pillow refuses it
    with pytest.raises(DataError, match=f"{bomb} is too large to decode safely.*skip_unreadable"):
        folder_data(tmp_path, input_size=10).train.take()
    skipped = folder_data(tmp_path, input_size=10, skip_unreadable=True)
    assert f"skipped 1 unreadable image(s), first {bomb}" in skipped.description
    assert len(skipped.train) + len(skipped.val) == 30


def test_a_link_to_nothing_is_named_not_dropped_with_its_class(tmp_path):
    write_images(tmp_path / "train", per_class=4)
    write_images(tmp_path / "test", per_class=2)
    owl = tmp_path / "train" / "owl"
    for path in owl.glob("*.png"):  # the owl class now holds only links to files that are gone
        path.unlink()
        path.symlink_to(tmp_path / "gone" / path.name)
    with pytest.raises(DataError, match=r"is a link to .*gone.*which does not exist \(4 such link\(s\) in .*owl\)"):
        folder_data(tmp_path)
    with pytest.raises(DataError, match=r"class folder .*owl holds no readable images.*dropped from the model"):
        folder_data(tmp_path, skip_unreadable=True)


def test_hidden_files_and_folders_are_not_data(tmp_path):
    write_images(tmp_path / "train", per_class=4)
    write_images(tmp_path / "test", per_class=2)
    for path in list((tmp_path / "train").glob("*/*.png")):
        (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # what a copy from macOS leaves
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"junk")
    data = folder_data(tmp_path)
    assert data.class_names == ["cat", "dog", "owl"] and len(data.train) + len(data.val) == 12
    data.train.take()


def test_an_empty_class_folder_is_an_error(tmp_path):
    write_images(tmp_path / "train", per_class=4)
    write_images(tmp_path / "test", per_class=2)
    (tmp_path / "train" / "emu").mkdir()
    with pytest.raises(DataError, match=r"class folder .*emu holds no readable images"):
        folder_data(tmp_path)


def test_a_tiny_image_enlarged_to_the_input_size_is_a_warning(tmp_path, caplog, monkeypatch):
    from pipeline.data import image_folder

    monkeypatch.setattr(image_folder, "_upscale_warned", False)
    write_images(tmp_path / "train", per_class=4, size=(16, 16))
    write_images(tmp_path / "test", per_class=2, size=(16, 16))
    dot = tmp_path / "train" / "cat" / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(dot)
    with caplog.at_level("WARNING", logger="compress"):
        folder_data(tmp_path, input_size=16).train.take()
    assert f"{dot} is 1x1 and is enlarged 16x to reach data.input_size 16" in caplog.text


@pytest.mark.parametrize(
    "config, message",
    [
        ({"input_size": 0}, "input_size is one size in pixels (e.g. 32) or [height, width], each at least 1 (got 0)"),
        ({"input_size": -4}, "each at least 1 (got -4)"),
        ({"input_size": [32, 32, 3]}, "or [height, width], each at least 1 (got [32, 32, 3])"),
        ({"input_size": "big"}, "input_size"),
        ({"channels": 4}, "channels\n  Input should be 1 or 3"),
    ],
)
def test_bad_image_settings_name_the_field(tmp_path, config, message):
    from pipeline.core.config_errors import format_validation_error
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        DataConfig(source="image_folder", path=str(tmp_path), **config)
    assert message in format_validation_error(refused.value, DataConfig) or message in str(refused.value)


def test_a_truncated_image_read_by_a_worker_is_one_paragraph(tmp_path):
    write_images(tmp_path / "train", per_class=10)
    write_images(tmp_path / "test", per_class=3)
    for path in (tmp_path / "train" / "owl").glob("*.png"):  # past the items checked in the main process
        path.write_bytes(b"not a png")
    with pytest.raises(DataError) as refused:
        load_data(DataConfig(source="image_folder", path=str(tmp_path), workers=1), seed=0).train.take()
    assert "cannot be decoded" in str(refused.value) and "Traceback" not in str(refused.value)


def test_a_users_datasets_are_read_lazily(tmp_path):
    from tests.data.user_datasets import Counting

    Counting.reads = 0
    data = load_data(DataConfig(source="dataset", factory="tests.data.user_datasets:three_classes", factory_kwargs={"train": 5000}, workers=0), seed=0)
    assert data.input_shape == (3, 12, 12) and len(data.train) == 4500 and len(data.val) == 500
    assert Counting.reads <= STATS_SAMPLE + 3 * SAMPLED, "loading read a bounded sample, not the dataset"
    before = Counting.reads
    x, y, _ = next(data.train.batches(64, torch.arange(len(data.train))))
    assert x.shape == (64, 3, 12, 12) and Counting.reads - before == 64, "a batch reads its own items only"


@pytest.mark.parametrize(
    "factory, message",
    [
        ("not_datasets", "train is a list, not a torch.utils.data.Dataset"),
        ("no_names", "returned no class_names"),
        ("tuple_of_three", "returned a tuple; return a dict with train, test"),
        ("missing_function", "cannot load tests.data.user_datasets:missing_function"),
    ],
)
def test_bad_factories_are_clear_errors(factory, message):
    with pytest.raises(DataError, match=message):
        load_data(DataConfig(source="dataset", factory=f"tests.data.user_datasets:{factory}"), seed=0)


def test_a_val_folder_is_the_validation_split(tmp_path):
    write_images(tmp_path / "train", per_class=6)
    write_images(tmp_path / "val", per_class=2, seed=2)
    write_images(tmp_path / "test", per_class=3, seed=1)
    data = folder_data(tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 9), "nothing is held out of train when val/ exists"
    merged = folder_data(tmp_path, train_on_validation=True)
    assert (len(merged.train), len(merged.val)) == (23, 1), "a val folder's images join training, but a fifth of them kept back"
    merged = folder_data(tmp_path, train_on_validation=True, validation_kept=0)
    assert (len(merged.train), len(merged.val)) == (24, 6), "with none kept back, they all join training and stay the validation split"
