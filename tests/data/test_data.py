import gzip
from pathlib import Path

import numpy as np
import torch
import pytest

from pipeline.core.errors import DataError
from pipeline.data import DataConfig, load_data
from pipeline.data.fashion_mnist import read_idx


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:  # closed here: an unclosed gzip file lacks its trailer on Python 3.12
        f.write(data)


def fake_fashion_mnist(directory: Path, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 255, (50, 28, 28)), gz)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", np.arange(50) % 10, gz)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 255, (20, 28, 28)), gz)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", np.arange(20) % 10, gz)


def test_embedded_default_is_normalised_with_train_statistics():
    data = load_data(DataConfig(), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (5400, 600, 1000)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert abs(float(data.train.dataset.x.mean())) < 1e-3 and abs(float(data.train.dataset.x.std()) - 1) < 1e-3
    assert len(data.mean) == 1 and 0.2 < data.mean[0] < 0.4


def test_subsets_and_seeded_split():
    cfg = DataConfig(train_subset=100, test_subset=50)
    a, b = load_data(cfg, seed=1), load_data(cfg, seed=1)
    assert len(a.train) == 100 and len(a.test) == 50 and len(a.val) == 10
    assert (a.train.dataset.y == b.train.dataset.y).all()


def pixels_of(split, data):
    return split.dataset.x * data.std[0] + data.mean[0]


def contains(images, sample) -> bool:
    return bool(((images - sample).abs() < 1e-4).flatten(1).all(1).any())


def test_training_on_validation_trains_on_all_but_the_kept_back_slice():
    held_out = load_data(DataConfig(train_subset=500), seed=1)
    merged = load_data(DataConfig(train_subset=500, train_on_validation=True, validation_kept=20), seed=1)
    assert len(held_out.val) == 50 and len(merged.val) == 10, "at most a fifth of the validation split is kept back"
    assert len(merged.train) == len(held_out.train) + 40
    trained, kept, validation = pixels_of(merged.train, merged), pixels_of(merged.val, merged), pixels_of(held_out.val, held_out)
    assert not any(contains(trained, sample) for sample in kept), "a kept-back image was trained on"
    assert all(contains(validation, sample) for sample in kept), "the kept-back images come from the validation split"
    assert sum(contains(trained, sample) for sample in validation) == 40, "the rest of the validation split is trained on"
    assert "but 10 of its images kept back" in merged.description and "also trained" not in held_out.description


def test_training_on_all_of_validation_keeps_scoring_it_and_says_so():
    held_out = load_data(DataConfig(train_subset=100), seed=1)
    merged = load_data(DataConfig(train_subset=100, train_on_validation=True, validation_kept=0), seed=1)
    assert len(merged.train) == len(held_out.train) + len(held_out.val) and len(merged.val) == len(held_out.val)
    trained = pixels_of(merged.train, merged)
    assert all(contains(trained, sample) for sample in pixels_of(held_out.val, held_out)), "every validation sample is trained on"
    assert "validation figures are on seen images" in merged.description


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_from_given_path(tmp_path, gz):
    fake_fashion_mnist(tmp_path, gz)
    data = load_data(DataConfig(source="fashion-mnist", path=str(tmp_path)), seed=0)
    assert len(data.train) + len(data.val) == 50 and len(data.test) == 20
    assert data.class_names[0] == "T-shirt/top"


def test_fashion_mnist_from_environment(tmp_path, monkeypatch):
    fake_fashion_mnist(tmp_path)
    monkeypatch.setenv("COMPRESS_DATA", str(tmp_path))
    assert len(load_data(DataConfig(source="fashion-mnist"), seed=0).test) == 20


def test_missing_fashion_mnist_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as e:
        load_data(DataConfig(source="fashion-mnist", path=str(tmp_path / "nowhere")), seed=0)
    message = str(e.value)
    assert str(tmp_path / "nowhere") in message
    assert "apt-get install dataset-fashion-mnist" in message and "COMPRESS_DATA" in message


def test_truncated_idx_is_refused(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    write_idx(path, np.arange(10), gz=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.random((40, 3, 8, 8)).astype(np.float32), y_train=np.arange(40) % 4,
             x_test=rng.random((12, 3, 8, 8)).astype(np.float32), y_test=np.arange(12) % 4)
    data = load_data(DataConfig(source="npz", path=str(path)), seed=0)
    assert data.input_shape == (3, 8, 8) and data.num_classes == 4


def test_npz_missing_arrays(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=np.zeros((4, 8, 8)))
    with pytest.raises(DataError, match="lacks y_train, x_test, y_test"):
        load_data(DataConfig(source="npz", path=str(path)), seed=0)


@pytest.mark.parametrize("settings", [
    {},
    {"train_subset": 50, "test_subset": 20},
    {"train_on_validation": True, "validation_kept": 5},
])
def test_arrays_and_streamed_datasets_split_the_same_samples_for_a_seed(tmp_path, settings):
    """One plan of indices for both ways of reading: the same images land in train, val and test."""
    from tests.data.user_datasets import numbered_arrays

    np.savez(tmp_path / "numbered.npz", **numbered_arrays())
    common = {"mean": [0.0], "std": [1.0], "val_fraction": 0.2, "workers": 0, **settings}
    arrays = load_data(DataConfig(source="npz", path=str(tmp_path / "numbered.npz"), **common), seed=3)
    streamed = load_data(DataConfig(source="dataset", factory="tests.data.user_datasets:numbered", **common), seed=3)
    for name in ("train", "val", "test"):
        a, b = getattr(arrays, name).take(), getattr(streamed, name).take()
        assert sorted(a[0][:, 0, 0, 0].tolist()) == sorted(b[0][:, 0, 0, 0].tolist()), name
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), f"{name}: same samples in the same order"
    assert len(arrays.val) == (5 if settings.get("train_on_validation") else len(arrays.val))
