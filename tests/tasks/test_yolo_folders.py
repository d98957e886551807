"""The YOLO folder layout: the same scenes read from it give the same targets as from COCO; a missing
label file, a bad line, an unknown class and a box outside the image are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.errors import DataError
from pipeline.data import DataConfig, load_data
from pipeline.data.registry import SOURCES
from pipeline.data.scenes import write_scenes


def scenes(folder, layout):
    raw = SOURCES.get("embedded")(DataConfig())
    write_scenes(folder, raw.x_train[:400], raw.y_train[:400], raw.x_test[:100], raw.y_test[:100], raw.class_names,
                 {"train": 12, "val": 4, "test": 4}, canvas=64, seed=0, quiet=True, layout=layout)
    return folder


def targets(folder, source):
    data = load_data(DataConfig(source=source, path=str(folder), workers=0, mean=[0.0], std=[1.0]), 0)
    return data, torch.stack([data.test.dataset[i][1] for i in range(len(data.test))])


def test_the_same_scenes_in_yolo_and_coco_give_the_same_targets_and_pixels(tmp_path):
    coco, from_coco = targets(scenes(tmp_path / "coco", "coco"), "coco")
    yolo, from_yolo = targets(scenes(tmp_path / "yolo", "yolo"), "yolo")
    assert yolo.class_names == coco.class_names and yolo.targets == "boxes"
    assert torch.allclose(from_yolo, from_coco, atol=1e-3)  # the label files hold 6 decimals of a fraction
    assert torch.equal(yolo.test.dataset[0][0], coco.test.dataset[0][0])


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda labels: labels.unlink(), "no label file"),
        (lambda labels: labels.write_text("3 0.5 0.5 0.2\n"), "line 1: '3 0.5 0.5 0.2' is not `class cx cy w h`"),
        (lambda labels: labels.write_text("12 0.5 0.5 0.2 0.2\n"), "line 1: class 12 is not among the 10 classes of data.yaml"),
        (lambda labels: labels.write_text("1 0.95 0.5 0.2 0.2\n"), "reaches outside the image"),
        (lambda labels: labels.write_text("1 0.5 0.5 0 0.2\n"), "a box of zero size"),
    ],
)
def test_bad_label_files_are_named(tmp_path, change, expected):
    folder = scenes(tmp_path / "yolo", "yolo")
    labels = folder / "labels" / "train" / "000003.txt"
    change(labels)
    with pytest.raises(DataError) as error:
        load_data(DataConfig(source="yolo", path=str(folder), workers=0), 0)
    assert expected in str(error.value) and "000003" in str(error.value)


def test_an_empty_label_file_is_an_image_without_objects(tmp_path):
    folder = scenes(tmp_path / "yolo", "yolo")
    (folder / "labels" / "test" / "000000.txt").write_text("")
    data = load_data(DataConfig(source="yolo", path=str(folder), workers=0), 0)
    assert (data.test.dataset[0][1][:, 0] == -1).all()
    assert np.isfinite(data.test.dataset[0][0].numpy()).all()
