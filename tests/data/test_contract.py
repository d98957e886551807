"""Bad data arrays are refused when data is loaded, with one paragraph naming the array, through the
CLI (exit 1, no traceback) and before any training."""

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import main


def good_arrays() -> dict:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 255, (40, 8, 8), dtype=np.uint8),
        "y_train": rng.integers(0, 3, 40),
        "x_test": rng.integers(0, 255, (20, 8, 8), dtype=np.uint8),
        "y_test": rng.integers(0, 3, 20),
    }


def with_nan(arrays: dict) -> dict:
    x = arrays["x_train"].astype(np.float32)
    x[7, 2, 3] = np.nan
    return {**arrays, "x_train": x}


def with_fraction(arrays: dict) -> dict:
    y = arrays["y_train"].astype(np.float64)
    y[5] = 1.5
    return {**arrays, "y_train": y}


BAD = {
    "empty training split": (lambda a: {**a, "x_train": a["x_train"][:0], "y_train": a["y_train"][:0]}, "x_train is empty"),
    "string labels": (lambda a: {**a, "y_train": np.array(["cat"] * 40)}, "y_train holds strings, not class indices"),
    "object arrays": (lambda a: {**a, "x_test": np.array([object()] * 20, dtype=object)}, "x_test is stored as pickled Python objects"),
    "different shapes": (lambda a: {**a, "x_test": a["x_test"][:, :6, :6]}, "training images are [1, 8, 8] (C,H,W) but test images are [1, 6, 6]"),
    "fractional labels": (with_fraction, "y_train holds 1 label(s) that are not whole numbers (first: 1.5 at index 5)"),
    "NaN pixels": (with_nan, "x_train has NaN or infinite pixel values in 1 image(s) (first: index 7)"),
    "label count": (lambda a: {**a, "y_test": a["y_test"][:15]}, "y_test has 15 labels for 20 images"),
    "labels out of range": (lambda a: {**a, "y_test": a["y_test"] + 5, "class_names": np.array(["a", "b", "c"])}, "y_test labels must lie in 0..2 (3 classes), found"),
    "2-D labels": (lambda a: {**a, "y_train": a["y_train"][:, None]}, "y_train has shape [40, 1]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arrays_are_one_paragraph_and_exit_1(case, tmp_path, tiny_recipe, write_recipe):
    spoil, message = BAD[case]
    path = tmp_path / "data.npz"
    np.savez(path, **spoil(good_arrays()))
    tiny_recipe["data"] = {"source": "npz", "path": str(path), "batch_size": 8}
    result = CliRunner().invoke(main, ["run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert message in result.output and str(path) in result.output and "Traceback" not in result.output
    assert not list((tmp_path / "out").glob("01-*/state.json")), "refused before any stage finished"


def test_whole_float_labels_are_classes(tmp_path):
    from pipeline.data import DataConfig, load_data

    arrays = good_arrays()
    path = tmp_path / "data.npz"
    np.savez(path, **{**arrays, "y_train": arrays["y_train"].astype(np.float32)})
    data = load_data(DataConfig(source="npz", path=str(path)), seed=0)
    assert data.train.dataset.y.dtype.is_floating_point is False and set(data.train.dataset.y.tolist()) <= {0, 1, 2}
