"""Detection data: boxes stay on their pixels through letterbox and augmentation; bad annotations are
clear errors naming the file, the annotation and the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.core.errors import DataError
from pipeline.data import DataConfig, load_data
from pipeline.tasks.box_augment import _moved_boxes, augment_boxes
from pipeline.training.augment import Augment
from tests.tasks.detection_data import write_coco


def ink_box(image: torch.Tensor, level: float) -> list[float]:
    """The tight box (x1, y1, x2, y2, pixel edges) of the pixels above `level`."""
    ys, xs = torch.nonzero(image > level, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def rectangle(height: int, width: int, box: list[int]) -> np.ndarray:
    pixels = np.zeros((height, width), dtype=np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = 255
    return pixels


def one_box_set(root, size=(80, 120), box=(30, 10, 70, 50)):
    height, width = size
    x1, y1, x2, y2 = box
    split = [("a.png", rectangle(height, width, list(box)))]
    annotation = [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1]}]
    for name in ("train", "val", "test"):
        write_coco(root / name, split, annotation)
    return root


def test_letterbox_moves_each_box_with_its_pixels(tmp_path):
    """A 120 x 80 image letterboxed to 64 x 64: 64 px wide, round(80 * 64/120) = 43 px high, a 10 px
    bar above; the annotated box must land exactly on the rectangle's pixels."""
    root = one_box_set(tmp_path / "set")
    data = load_data(DataConfig(source="coco", path=str(root), input_size=64, mean=[0.0], std=[1.0], workers=0), 0)
    image, target = data.test.dataset[0]
    assert image.shape == (1, 64, 64) and target.shape == (1, 5)
    assert target[0, 0] == 0  # category id 1 is class 0
    drawn = ink_box(image[0], 0.5)
    assert target[0, 1:].tolist() == pytest.approx(drawn, abs=0.6)
    assert target[0, 1:].tolist() == pytest.approx([30 * 64 / 120, 10 * 43 / 80 + 10, 70 * 64 / 120, 50 * 43 / 80 + 10], abs=0.05)
    assert data.resize == {"letterbox": [64, 64]} and data.targets == "boxes"


def test_flip_zoom_and_shift_move_the_boxes_with_the_pixels():
    generator = torch.Generator().manual_seed(0)
    x, targets = torch.zeros(48, 1, 96, 96), torch.full((48, 2, 5), -1.0)
    for i in range(48):
        left, top = torch.randint(0, 60, (2,), generator=generator).tolist()
        w, h = torch.randint(10, 30, (2,), generator=generator).tolist()
        x[i, 0, top : top + h, left : left + w] = 1
        targets[i, 0] = torch.tensor([1.0, left, top, left + w, top + h])
    moved_x, moved = augment_boxes(x, targets, Augment(resized_crop=[0.5, 1.0], shift=8), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1), generator)
    flips = kept = 0
    for i in range(48):
        if moved[i, 0, 0] < 0:  # pushed mostly off the canvas: padding now
            continue
        kept += 1
        assert moved[i, 0, 1:].tolist() == pytest.approx(ink_box(moved_x[i, 0], 0.5), abs=0.75)
        flips += int(moved_x[i, 0, :, :48].sum() != x[i, 0, :, :48].sum())
    assert kept >= 40 and flips > 0
    assert (moved[:, 1] == -1).all()  # padding rows stay padding


def test_a_box_mostly_pushed_off_the_canvas_becomes_padding_and_one_partly_off_is_clipped():
    targets = torch.tensor([[[0.0, 0, 0, 10, 10], [1.0, 30, 0, 50, 10]]])
    no = torch.zeros(1, dtype=torch.bool)
    moved = _moved_boxes(targets, no, torch.ones(1), torch.tensor([8.0]), torch.zeros(1), 64, 64)  # content moves 8 px left
    assert moved[0, 0].tolist() == [-1.0] * 5  # 2 of its 10 px columns left: 20 % of its area, under KEPT_AREA
    assert moved[0, 1].tolist() == [1.0, 22, 0, 42, 10]
    moved = _moved_boxes(targets, no, torch.ones(1), torch.tensor([6.0]), torch.zeros(1), 64, 64)
    assert moved[0, 0].tolist() == [0.0, 0, 0, 4, 10]  # 40 % left: kept, clipped to the canvas


@pytest.mark.parametrize(
    "annotation, expected",
    [
        ({"bbox": [10, 10, 0, 5]}, "annotation 1 has a box of zero area (0 x 5 px)"),
        ({"bbox": [100, 10, 40, 20]}, "annotation 1: box [x 100, y 10, w 40, h 20] reaches outside its 120x80 image; clip it"),
        ({"category_id": 7}, "annotation 1 has category_id 7, not among the declared categories [1]"),
        ({"image_id": 5}, "annotation 1 belongs to image 5, which `images` does not list"),
        ({"bbox": [1, 2, 3]}, "annotation 1 has bbox [1, 2, 3]; a COCO box is [x, y, width, height]"),
    ],
)
def test_bad_annotations_are_named(tmp_path, annotation, expected):
    root = one_box_set(tmp_path / "set")
    path = root / "train" / "instances.json"
    document = json.loads(path.read_text())
    document["annotations"][0].update(annotation)
    path.write_text(json.dumps(document))
    with pytest.raises(DataError) as error:
        load_data(DataConfig(source="coco", path=str(root)), 0)
    assert expected in str(error.value) and str(path) in str(error.value)


def test_a_missing_image_file_and_differing_categories_are_named(tmp_path):
    root = one_box_set(tmp_path / "set")
    (root / "test" / "a.png").unlink()
    with pytest.raises(DataError, match="image 0's file a.png does not exist"):
        load_data(DataConfig(source="coco", path=str(root)), 0)
    root = one_box_set(tmp_path / "other")
    path = root / "test" / "instances.json"
    document = json.loads(path.read_text())
    document["categories"] = [{"id": 1, "name": "crate"}]
    path.write_text(json.dumps(document))
    with pytest.raises(DataError, match="differ from the training split's"):
        load_data(DataConfig(source="coco", path=str(root)), 0)


def test_images_of_several_sizes_need_an_input_size(tmp_path):
    root = tmp_path / "set"
    write_coco(root / "train", [("a.png", np.zeros((32, 32), np.uint8)), ("b.png", np.zeros((40, 32), np.uint8))], [])
    write_coco(root / "test", [("a.png", np.zeros((32, 32), np.uint8))], [])
    with pytest.raises(DataError, match="set data.input_size to letterbox them to one"):
        load_data(DataConfig(source="coco", path=str(root)), 0)


def test_compress_data_scenes_writes_a_coco_set_and_refuses_to_write_over_one(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    out = tmp_path / "scenes"
    args = ["data", "scenes", str(out), "--train", "12", "--val", "4", "--test", "4", "--canvas", "64"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "train 12 images" in result.output and "data: {source: coco, path:" in result.output
    data = load_data(DataConfig(source="coco", path=str(out), workers=0), 0)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 4) and data.input_shape == (1, 64, 64)
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "already holds files" in again.output and "Traceback" not in again.output
