"""Bad data arrays are refused when data is loaded, with one paragraph naming the array, through the
CLI (exit 1, no traceback) and before any training."""

import numpy as np
import pytest
import torch
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


# The rules themselves, called directly with exact messages: what a user reads when each one fires.
WHERE = "data.npz"


def refused(check, *args, **kwargs) -> str:
    from pipeline.core.errors import DataError

    with pytest.raises(DataError) as caught:
        check(*args, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize("array, kind", [
    (np.array(["a"]), "strings"), (np.array([b"a"]), "bytes"), (np.array([object()]), "Python objects"),
    (np.array([1j]), "dtype complex128"),
])
def test_arrays_that_are_not_numbers_say_what_they_hold(array, kind):
    from pipeline.data import contract

    assert refused(contract.images, array, "x_train", WHERE) == f"{WHERE}: x_train holds {kind}, not pixel values; store images as uint8 or float arrays"
    assert refused(contract.labels, array, "y_train", WHERE) == (
        f"{WHERE}: y_train holds {kind}, not class indices; map each class to 0..K-1 and give the names as class_names"
    )


def test_image_arrays_are_shaped_scaled_and_finite():
    from pipeline.data import contract

    assert refused(contract.images, np.zeros((2, 3), np.uint8), "x_test", WHERE) == (
        f"{WHERE}: x_test has shape [2, 3]; images must be [N,H,W] (grey) or [N,C,H,W]"
    )
    grey = contract.images(np.full((2, 4, 4), 51, np.uint8), "x", WHERE)
    assert grey.dtype == np.float32 and grey.shape == (2, 1, 4, 4) and np.allclose(grey, 0.2)
    floats = contract.images(np.full((2, 1, 4, 4), 51.0), "x", WHERE)
    assert floats.dtype == np.float32 and np.all(floats == 51.0), "float images are taken as they are"
    rgb = np.zeros((4, 3, 2, 2), np.float32)
    rgb[2, 2, 1, 1] = np.inf
    assert refused(contract.images, rgb, "x_train", WHERE) == (
        f"{WHERE}: x_train has NaN or infinite pixel values in 1 image(s) (first: index 2); fix or drop them before training"
    )


def test_labels_are_whole_in_range_and_one_per_image():
    from pipeline.data import contract

    assert contract.labels(np.array([0.0, 2.0]), "y", WHERE).dtype == np.int64
    assert refused(contract.labels, np.array([0.0, np.nan]), "y_train", WHERE) == (
        f"{WHERE}: y_train holds 1 label(s) that are not whole numbers (first: nan at index 1); labels are class indices 0..K-1"
    )
    assert refused(contract.labels, np.array([0, 1]), "y_test", WHERE, count=3) == f"{WHERE}: y_test has 2 labels for 3 images; give one label per image"
    contract.in_range(np.array([0, 2]), "y", 3, WHERE)
    contract.in_range(np.array([], np.int64), "y", 3, WHERE)
    assert refused(contract.in_range, np.array([0, 3]), "y_test", 3, WHERE) == f"{WHERE}: y_test labels must lie in 0..2 (3 classes), found 0..3"
    assert refused(contract.in_range, np.array([-1, 2]), "y_test", 3, WHERE) == f"{WHERE}: y_test labels must lie in 0..2 (3 classes), found -1..2"


def test_splits_must_share_one_sample_shape():
    from pipeline.data import contract

    assert refused(contract.same_sample_shape, np.zeros((2, 1, 4, 4)), np.zeros((2, 3, 4, 4)), WHERE) == (
        f"{WHERE}: training images are [1, 4, 4] (C,H,W) but test images are [3, 4, 4]; every split must have the same channels and size"
    )


def test_normalisation_gives_one_value_per_channel_or_one_for_all():
    from pipeline.data import contract

    assert contract.channel_stats([0.5], [0.25], 3, WHERE) == ([0.5] * 3, [0.25] * 3)
    assert contract.channel_stats([0.5], [0.25], 1, WHERE) == ([0.5], [0.25])
    assert contract.channel_stats([0.5], [0.25], 2, WHERE) == ([0.5] * 2, [0.25] * 2)
    assert contract.channel_stats((0.1, 0.2), (0.3, 0.4), 2, WHERE) == ([0.1, 0.2], [0.3, 0.4])
    assert refused(contract.channel_stats, [0.1, 0.2], [0.3], 2, WHERE) == (
        f"{WHERE}: data.mean/data.std give 2/1 values for 2-channel images; give one per channel"
    )
    assert refused(contract.channel_stats, [0.1, 0.2], [0.3, 0.4, 0.5], 2, WHERE) == (
        f"{WHERE}: data.mean/data.std give 2/3 values for 2-channel images; give one per channel"
    )
    assert refused(contract.channel_stats, [0.1, 0.2], [0.3], 3, WHERE) == (
        f"{WHERE}: data.mean/data.std give 2/1 values for 3-channel images; give one per channel"
    )


class Items:
    """A user's Dataset returning given items."""

    def __init__(self, *items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


IMAGE = torch.zeros(1, 4, 4)


@pytest.mark.parametrize("value, message", [
    ([IMAGE], "train item 5 is a list; each item must be (image tensor [C,H,W], int label)"),
    ((IMAGE, 1, 2), "train item 5 is a tuple; each item must be (image tensor [C,H,W], int label)"),
    (7, "train item 5 is a int; each item must be (image tensor [C,H,W], int label)"),
    ((np.zeros((1, 4, 4), np.float32), 1), "train item 5's image is ndarray; images must be float tensors [C,H,W]"),
    ((torch.zeros(4, 4), 1), "train item 5's image is a 2-D torch.float32 tensor; images must be float tensors [C,H,W]"),
    ((torch.zeros(1, 4, 4, dtype=torch.uint8), 1), "train item 5's image is a 3-D torch.uint8 tensor; images must be float tensors [C,H,W]"),
    ((torch.full((1, 4, 4), float("nan")), 1), "train item 5 has NaN or infinite pixel values"),
    ((IMAGE, 1.5), "train item 5's label is 1.5; labels are int class indices 0..2"),
    ((IMAGE, True), "train item 5's label is True; labels are int class indices 0..2"),
    ((IMAGE, torch.tensor([1, 2])), "train item 5's label is tensor([1, 2]); labels are int class indices 0..2"),
    ((IMAGE, 3), "train item 5's label 3 is outside 0..2 (3 classes)"),
    ((IMAGE, -1), "train item 5's label -1 is outside 0..2 (3 classes)"),
    ((torch.zeros(1, 5, 4), 1), "train item 5 is [1, 5, 4] but the training images are [1, 4, 4] (C,H,W); every image must have one size"),
])
def test_every_streamed_item_is_checked_by_the_array_rules(value, message):
    from pipeline.data import contract

    assert refused(contract.item, value, "train", 5, 3, WHERE, (1, 4, 4)) == f"{WHERE}: {message}"


def test_bright_pixels_whose_float32_sum_overflows_are_still_finite():
    from pipeline.data import contract

    x, _ = contract.item((torch.full((1, 4, 4), 3e38), 0), "train", 0, 3, WHERE)
    assert float(x.sum()) == float("inf"), "the float32 sum overflows; the check sums in float64"


@pytest.mark.parametrize("label", [2, np.int64(2), torch.tensor(2), torch.tensor([2]), np.array([2])])
def test_an_item_label_may_be_any_integer_holding_one_class(label):
    from pipeline.data import contract

    x, y = contract.item((IMAGE, label), "train", 0, 3, WHERE)
    assert x is IMAGE and y == 2 and type(y) is int


def test_a_streamed_split_is_sampled_for_its_shape_and_checked_item_by_item():
    from pipeline.data import contract

    good = [(torch.zeros(1, 4, 4), i % 3) for i in range(contract.SAMPLED)]
    assert contract.sample_dataset(Items(*good), "train", 3, WHERE) == (1, 4, 4)
    assert contract.sample_dataset(Items(*good), "test", 3, WHERE, shape=(1, 4, 4)) == (1, 4, 4)
    assert refused(contract.sample_dataset, Items(), "val", 3, WHERE) == f"{WHERE}: the val split is empty; every split needs at least one image"
    late = Items(*good, (torch.zeros(1, 4, 4), 7))  # past the sampled items: only the streaming check sees it
    assert contract.sample_dataset(late, "train", 3, WHERE) == (1, 4, 4)
    second_differs = Items(good[0], (torch.zeros(1, 5, 5), 0))
    assert refused(contract.sample_dataset, second_differs, "train", 3, WHERE) == (
        f"{WHERE}: train item 1 is [1, 5, 5] but the training images are [1, 4, 4] (C,H,W); every image must have one size"
    )
    resized = contract.Checked(Items(*good, (torch.zeros(1, 5, 5), 0)), "train", 3, WHERE, (1, 4, 4))
    assert refused(resized.__getitem__, contract.SAMPLED).startswith(f"{WHERE}: train item {contract.SAMPLED} is [1, 5, 5] but")
    checked = contract.Checked(late, "train", 3, WHERE, (1, 4, 4))
    assert len(checked) == contract.SAMPLED + 1 and checked[0][1] == 0
    assert refused(checked.__getitem__, contract.SAMPLED) == f"{WHERE}: train item {contract.SAMPLED}'s label 7 is outside 0..2 (3 classes)"


def raw(**arrays):
    from pipeline.data.registry import RawData

    a = {**good_arrays(), **arrays}
    return RawData(a["x_train"], a["y_train"], a["x_test"], a["y_test"], a.get("class_names"), WHERE)


def test_a_sources_arrays_go_through_every_rule_in_one_call():
    from pipeline.data import contract

    checked = contract.raw_data(raw(class_names=["a", "b", "c"]))
    assert checked.x_train.shape == (40, 1, 8, 8) and checked.x_test.dtype == np.float32 and checked.y_test.dtype == np.int64
    assert checked.class_names == ["a", "b", "c"]
    assert refused(contract.raw_data, raw(x_test=np.array(["x"] * 20))) == f"{WHERE}: x_test holds strings, not pixel values; store images as uint8 or float arrays"
    assert refused(contract.raw_data, raw(y_train=np.zeros(39, dtype=int))) == f"{WHERE}: y_train has 39 labels for 40 images; give one label per image"
    assert refused(contract.raw_data, raw(y_train=np.full(40, 3), class_names=["a", "b", "c"])) == (
        f"{WHERE}: y_train labels must lie in 0..2 (3 classes), found 3..3"
    )


@pytest.mark.parametrize("y_train, y_test, names", [
    (np.zeros(40, dtype=int), np.zeros(20, dtype=int), ["0"]),
    (np.full(40, 2), np.zeros(20, dtype=int), ["0", "1", "2"]),
    (np.zeros(40, dtype=int), np.full(20, 4), ["0", "1", "2", "3", "4"]),
    (np.full(40, 1.0), np.zeros(20), ["0", "1"]),  # whole-number floats: classes, once checked
])
def test_a_source_without_class_names_gets_one_per_class_its_labels_reach(y_train, y_test, names):
    from pipeline.data import contract

    assert contract.raw_data(raw(y_train=y_train, y_test=y_test)).class_names == names


def test_a_streamed_source_is_sampled_split_by_split_and_wrapped_to_check_every_item():
    from pipeline.data import contract
    from pipeline.data.registry import Streamed

    good = [(torch.zeros(1, 4, 4), i % 3) for i in range(contract.SAMPLED)]
    checked = contract.streamed(Streamed(Items(*good), Items(*good), None, ["a", "b", "c"], WHERE))
    assert checked.shape == (1, 4, 4) and checked.val is None
    assert (checked.train.name, checked.test.name) == ("train", "test")
    assert (checked.train.classes, checked.train.where, checked.test.shape) == (3, WHERE, (1, 4, 4))
    with_val = contract.streamed(Streamed(Items(*good), Items(*good), Items(*good[:2]), ["a", "b", "c"], WHERE))
    assert len(with_val.val) == 2 and with_val.val.name == "val" and with_val.val.shape == (1, 4, 4)
    wider = [(torch.zeros(1, 5, 5), 0)]
    assert refused(contract.streamed, Streamed(Items(*good), Items(*wider), Items(*wider), ["a", "b", "c"], WHERE)).startswith(
        f"{WHERE}: test item 0 is [1, 5, 5] but the training images are [1, 4, 4]"
    ), "test is sampled before val, each against the training shape"
    assert refused(contract.streamed, Streamed(Items(*good), Items(*good), Items(*wider), ["a", "b", "c"], WHERE)).startswith(
        f"{WHERE}: val item 0 is [1, 5, 5] but the training images are [1, 4, 4]"
    )
    assert refused(contract.streamed, Streamed(Items((torch.zeros(4, 4), 0)), Items(*good), None, ["a", "b", "c"], WHERE)) == (
        f"{WHERE}: train item 0's image is a 2-D torch.float32 tensor; images must be float tensors [C,H,W]"
    )
    assert refused(contract.streamed, Streamed(Items(*good), Items((torch.zeros(1, 4, 4), 3)), None, ["a", "b", "c"], WHERE)) == (
        f"{WHERE}: test item 0's label 3 is outside 0..2 (3 classes)"
    )


def box_targets(*rows, most: int = 3) -> torch.Tensor:
    out = torch.full((most, 5), -1.0)
    for i, row in enumerate(rows):
        out[i] = torch.tensor(row, dtype=torch.float32)
    return out


@pytest.mark.parametrize("targets, message", [
    ("boxes", "train item 4's targets are str; detection targets are a float tensor [M, 5]: class, x1, y1, x2, y2 (class -1 pads)"),
    (torch.zeros(3, 4), "train item 4's targets are a [3, 4] torch.float32 tensor; detection targets are a float tensor [M, 5]"),
    (torch.zeros(5), "train item 4's targets are a [5] torch.float32 tensor"),
    (torch.zeros(3, 5, dtype=torch.int64), "train item 4's targets are a [3, 5] torch.int64 tensor"),
    (box_targets((0, 1, 1, 4, float("nan"))), "train item 4's targets hold NaN or infinite values"),
    (box_targets((1.5, 1, 1, 4, 4)), "train item 4 has an object of class 1.5; classes are 0..2 (3), and -1 pads"),
    (box_targets((3, 1, 1, 4, 4)), "train item 4 has an object of class 3; classes are 0..2 (3)"),
    (box_targets((-2, 1, 1, 4, 4)), "train item 4 has an object of class -2"),
    (box_targets((0, 1, 1, 1, 4)), "train item 4 has a box of zero area (x2 <= x1 or y2 <= y1)"),
    (box_targets((0, 1, 3, 4, 3)), "train item 4 has a box of zero area"),
    (box_targets((0, 2, 1, 1, 4)), "train item 4 has a box of zero area"),
    (box_targets((0, 5, 1, 4, 6)), "train item 4 has a box of zero area"),  # x2 < x1 while x2 > y1
    (box_targets((0, 1, 5, 6, 4)), "train item 4 has a box of zero area"),  # y2 < y1 while y2 > x1
    (box_targets((-1, 0, 0, 0, 0), (0, 1, 1, 2, 2), (3, 1, 1, 4, 4)), "train item 4 has an object of class 3"),  # the first wrong row is named
    (box_targets((0, -1.01, 1, 4, 4)), "train item 4 has a box reaching outside its 8x6 image; clip boxes to the image"),
    (box_targets((0, 1, -1.01, 4, 4)), "reaching outside its 8x6 image"),
    (box_targets((0, 1, 1, 9.01, 4)), "reaching outside its 8x6 image"),
    (box_targets((0, 1, 1, 4, 7.01)), "reaching outside its 8x6 image"),
])
def test_every_detection_target_is_checked_as_it_streams(targets, message):
    from pipeline.data import contract

    assert message in refused(contract.boxes_item, (torch.zeros(1, 6, 8), targets), "train", 4, 3, WHERE)


def test_detection_targets_may_touch_the_edges_within_a_pixel_and_padding_is_not_an_object():
    from pipeline.data import contract

    edge = box_targets((2, -1.0, -1.0, 9.0, 7.0), (0, 1, 1, 2, 2))  # the image is 8 wide, 6 high: one pixel of tolerance
    x, y = contract.boxes_item((torch.zeros(1, 6, 8), edge), "train", 4, 3, WHERE)
    assert y is edge and x.shape == (1, 6, 8)
    padding_anywhere = torch.tensor([[-1.0, 50, 50, 0, 0], [0, 1, 1, 2, 2]])
    assert contract.boxes_item((torch.zeros(1, 6, 8), padding_anywhere), "train", 0, 1, WHERE)[1] is padding_anywhere
    assert refused(contract.boxes_item, (torch.zeros(1, 6, 8),), "val", 2, 3, WHERE) == (
        f"{WHERE}: val item 2 is a tuple; each item must be (image tensor [C,H,W], targets [M, 5])")
    assert refused(contract.boxes_item, (torch.zeros(6, 8), edge), "val", 2, 3, WHERE).startswith(f"{WHERE}: val item 2's image is a 2-D")
    assert refused(contract.boxes_item, (torch.zeros(1, 5, 8), edge), "val", 2, 3, WHERE, (1, 6, 8)).startswith(f"{WHERE}: val item 2 is [1, 5, 8] but")


def test_a_streamed_detection_source_checks_boxes_not_class_labels():
    from pipeline.data import contract
    from pipeline.data.registry import Streamed

    items = [(torch.zeros(1, 6, 8), box_targets((i % 3, 1, 1, 4, 4))) for i in range(contract.SAMPLED)]
    checked = contract.streamed(Streamed(Items(*items), Items(*items), Items(*items[:2]), ["a", "b", "c"], WHERE, targets="boxes"))
    assert checked.train.check is contract.boxes_item and checked.test[0][1].shape == (3, 5) and checked.val.check is contract.boxes_item
    bad_late = contract.Checked(Items(*items, (torch.zeros(1, 6, 8), box_targets((5, 1, 1, 4, 4)))), "train", 3, WHERE, (1, 6, 8), contract.boxes_item)
    assert "train item 8 has an object of class 5" in refused(bad_late.__getitem__, contract.SAMPLED)
    class_labels = Streamed(Items(*[(torch.zeros(1, 6, 8), 0)] * 2), Items(*items), None, ["a", "b", "c"], WHERE, targets="boxes")
    assert "train item 0's targets are int; detection targets are a float tensor" in refused(contract.streamed, class_labels)
