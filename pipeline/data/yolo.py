"""`yolo`: a detection data set in the YOLO (Ultralytics) folder layout.

    root/data.yaml                       names: [cat, dog, …]   (or {0: cat, 1: dog})
    root/images/train/*.jpg|png|…        root/labels/train/<same stem>.txt
    root/images/test/…                   root/labels/test/…      (images/val + labels/val optional)

Each label file has one line per object, `class cx cy w h`, the centre and size as fractions of the
image's width and height. An image with no objects has an empty label file: a missing one is an
error naming the image (a forgotten export is more common than a deliberate background image, and
reading it as "no objects" would teach the model that its objects are background). A line that is
not five numbers, a class outside `names`, a box of zero size or one reaching outside the image are
errors naming the file and line. Images are letterboxed and batched exactly as the `coco` source does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from pipeline.core.errors import DataError
from pipeline.data.coco import CocoImages, channels_of, input_size
from pipeline.data.image_folder import EXTENSIONS
from pipeline.data.registry import SOURCES, Streamed

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig

EDGE_TOLERANCE = 1e-3  # of the image's side: rounding in the tools that write these files


def class_names(root: Path) -> list[str]:
    path = root / "data.yaml"
    if not path.is_file():
        raise DataError(f"{root}: no data.yaml; a YOLO data set names its classes there (`names: [cat, dog]`)")
    try:
        names = (yaml.safe_load(path.read_text()) or {}).get("names")
    except yaml.YAMLError as e:
        raise DataError(f"{path}: not valid YAML: {e}") from None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names:
        raise DataError(f"{path}: `names` must list the class names in class-id order (e.g. `names: [cat, dog]`), got {names!r}")
    return [str(n) for n in names]


def read_split(root: Path, split: str, classes: int) -> tuple[list[Path], list[tuple[int, int]], list[np.ndarray]]:
    """One split's image files, their sizes and their boxes (class, x1, y1, x2, y2 in pixels), checked."""
    from PIL import Image

    images = sorted(p for p in (root / "images" / split).iterdir() if p.suffix.lower() in EXTENSIONS and not p.name.startswith("."))
    files, sizes, boxes = [], [], []
    for image in images:
        label = root / "labels" / split / f"{image.stem}.txt"
        if not label.is_file():
            raise DataError(f"{image}: no label file {label}; every image needs one (an empty file for an image without objects)")
        with Image.open(image) as opened:
            width, height = opened.size
        rows = [_row(line, label, number, classes, width, height) for number, line in enumerate(label.read_text().splitlines(), 1) if line.strip()]
        files.append(image)
        sizes.append((width, height))
        boxes.append(np.array(rows, dtype=np.float32).reshape(-1, 5))
    return files, sizes, boxes


def _row(line: str, label: Path, number: int, classes: int, width: int, height: int) -> list[float]:
    where = f"{label}, line {number}"
    parts = line.split()
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 5 or not all(np.isfinite(values)):
        raise DataError(f"{where}: {line.strip()!r} is not `class cx cy w h` (five numbers, the box as fractions of the image)")
    cls, cx, cy, w, h = values
    if cls != int(cls) or not 0 <= cls < classes:
        raise DataError(f"{where}: class {parts[0]} is not among the {classes} classes of data.yaml (0..{classes - 1})")
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: a box of zero size (w {w}, h {h}); drop the line or give its real size")
    if cx - w / 2 < -EDGE_TOLERANCE or cy - h / 2 < -EDGE_TOLERANCE or cx + w / 2 > 1 + EDGE_TOLERANCE or cy + h / 2 > 1 + EDGE_TOLERANCE:
        raise DataError(f"{where}: box (cx {cx}, cy {cy}, w {w}, h {h}) reaches outside the image (coordinates are fractions 0..1); clip it")
    return [cls, (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]


@SOURCES.register("yolo")
def load_yolo(cfg: DataConfig) -> Streamed:
    if cfg.path is None:
        raise DataError("data.source yolo needs data.path: a folder with data.yaml, images/{train,test} and labels/{train,test}")
    root = Path(cfg.path)
    names = class_names(root)
    missing = [f"images/{s}" for s in ("train", "test") if not (root / "images" / s).is_dir()]
    if missing:
        raise DataError(f"{root}: no {' or '.join(missing)} folder; a YOLO data set has images/train and images/test (images/val optional), labels/ beside them")
    splits = {s: read_split(root, s, len(names)) for s in ("train", "val", "test") if (root / "images" / s).is_dir()}
    if not splits["train"][0]:
        raise DataError(f"{root / 'images' / 'train'}: no images")
    size = input_size(cfg, {name: (f, s, b, None) for name, (f, s, b) in splits.items()}, root)
    channels = cfg.channels or channels_of(splits["train"][0][0])
    most = max(1, max(len(b) for _, _, boxes in splits.values() for b in boxes or [[]]))
    datasets = {name: CocoImages(files, sizes, boxes, channels, size, most) for name, (files, sizes, boxes) in splits.items()}
    return Streamed(
        train=datasets["train"], test=datasets["test"], val=datasets.get("val"), class_names=names,
        description=f"yolo {root} ({len(splits['train'][0])} train images, {len(names)} classes, letterboxed to {size[1]}x{size[0]})",
        resize={"letterbox": [size[0], size[1]]}, targets="boxes",
    )
