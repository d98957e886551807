"""Tiny detection data for the tests: scenes composed from the embedded Fashion-MNIST, in COCO format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data import DataConfig
from pipeline.data.registry import SOURCES
from pipeline.data.scenes import write_scenes


def tiny_scenes(folder: Path, train: int = 64, val: int = 24, test: int = 24, canvas: int = 64) -> Path:
    raw = SOURCES.get("embedded")(DataConfig())
    write_scenes(folder, raw.x_train[:2000], raw.y_train[:2000], raw.x_test[:500], raw.y_test[:500], raw.class_names,
                 {"train": train, "val": val, "test": test}, canvas=canvas, seed=0, quiet=True)
    return folder


def write_coco(folder: Path, images: list[tuple[str, np.ndarray]], annotations: list[dict], categories=({"id": 1, "name": "box"},)) -> Path:
    """A COCO split folder from (file name, uint8 image) pairs and raw annotation dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {"images": [], "annotations": annotations, "categories": list(categories)}
    for image_id, (name, pixels) in enumerate(images):
        Image.fromarray(pixels).save(folder / name)
        document["images"].append({"id": image_id, "file_name": name, "width": pixels.shape[1], "height": pixels.shape[0]})
    (folder / "instances.json").write_text(json.dumps(document))
    return folder
