"""`coco`: a detection data set in COCO format, images decoded with Pillow as they are read.

    root/train/instances.json  root/train/<file_name of each image>
    root/test/instances.json   root/test/…      (root/val/… optional: otherwise carved from train)

Each image is letterboxed to `input_size` (scaled to fit, aspect kept, centred on black), and its
boxes with it, so a box always covers the same pixels it covered in the file. Without `input_size`
every image must already have one size. Targets are [M, 5] per image, one row per object (class,
x1, y1, x2, y2 in input pixels), padded with class -1 to the most objects any image holds, so a
batch is one tensor like a classification batch's labels. Category ids (any integers) become
classes 0..K-1 in id order, named by the categories' names.

Annotations are checked when the source is opened, before any training: a box of zero area, a box
outside its image, a category id that is not declared, an annotation of an image that is not
listed, a missing image file, a split whose categories differ from train's — each is one error
naming the file, the annotation id and the fix.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.core.errors import DataError
from pipeline.data.image_folder import decode
from pipeline.data.registry import SOURCES, Streamed

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig

ANNOTATIONS = "instances.json"
EDGE_TOLERANCE = 1.0  # pixels a box may reach past its image's edge (rounding in annotation tools)


def letterbox_geometry(width: int, height: int, size: tuple[int, int]) -> tuple[float, int, int, int, int]:
    """(scale, new width, new height, left pad, top pad) that fit a width x height image into `size` (h, w)."""
    scale = min(size[0] / height, size[1] / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return scale, new_w, new_h, (size[1] - new_w) // 2, (size[0] - new_h) // 2


def letterbox_boxes(boxes: np.ndarray, width: int, height: int, size: tuple[int, int]) -> np.ndarray:
    """Boxes [n, 4] (x1, y1, x2, y2) of a width x height image, where they land after `letterbox`."""
    scale, new_w, new_h, left, top = letterbox_geometry(width, height, size)
    sx, sy = new_w / width, new_h / height  # the scale actually applied, after rounding the new size
    return boxes * np.array([sx, sy, sx, sy], dtype=np.float32) + np.array([left, top, left, top], dtype=np.float32)


def letterbox(image, size: tuple[int, int]):
    """A Pillow image scaled to fit `size` (h, w) with its aspect kept, centred on black."""
    from PIL import Image

    scale, new_w, new_h, left, top = letterbox_geometry(image.width, image.height, size)
    canvas = Image.new(image.mode, (size[1], size[0]))
    canvas.paste(image if (new_w, new_h) == image.size else image.resize((new_w, new_h), Image.BILINEAR), (left, top))
    return canvas


class CocoImages(Dataset):
    """(letterboxed image [C, H, W] in [0, 1], targets [M, 5]) read on demand; picklable for DataLoader workers."""

    def __init__(self, files: list[Path], sizes: list[tuple[int, int]], boxes: list[np.ndarray], channels: int, size: tuple[int, int], most: int):
        self.files, self.sizes, self.boxes, self.channels, self.size, self.most = files, sizes, boxes, channels, size, most

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        image = decode(self.files[index], self.channels)
        width, height = self.sizes[index]
        if image.size != (width, height):
            raise DataError(f"{self.files[index]} is {image.size[0]}x{image.size[1]} but its annotation file says {width}x{height}; fix the image's width/height in {ANNOTATIONS}")
        if (height, width) != self.size:
            image = letterbox(image, self.size)
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        rows = self.boxes[index]
        targets = np.full((self.most, 5), -1.0, dtype=np.float32)
        if len(rows):
            targets[: len(rows), 0] = rows[:, 0]
            targets[: len(rows), 1:] = letterbox_boxes(rows[:, 1:], width, height, self.size)
        return torch.from_numpy(np.ascontiguousarray(array)), torch.from_numpy(targets)


def read_split(folder: Path, categories: dict[int, str] | None) -> tuple[list[Path], list[tuple[int, int]], list[np.ndarray], dict[int, str]]:
    """One split's files, sizes and boxes (class, x1, y1, x2, y2 in the file's pixels), checked."""
    path = folder / ANNOTATIONS
    if not path.is_file():
        raise DataError(f"{folder}: no {ANNOTATIONS}; a coco split folder holds {ANNOTATIONS} and the images it names")
    try:
        document = json.loads(path.read_text())
        images, annotations, declared = document["images"], document.get("annotations", []), document["categories"]
        found = {int(c["id"]): str(c.get("name", c["id"])) for c in declared}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a COCO annotation file ({type(e).__name__}: {e}); it needs `images`, `annotations` and `categories`") from None
    if categories is not None and found != categories:
        raise DataError(f"{path}: its categories {sorted(found.items())} differ from the training split's {sorted(categories.items())}; every split must declare the same ones")
    if not found:
        raise DataError(f"{path}: declares no categories; list each class as {{id, name}} under `categories`")
    class_of = {cid: k for k, cid in enumerate(sorted(found))}
    by_image: dict[int, list] = defaultdict(list)
    sizes: dict[int, tuple[int, int]] = {}
    files: dict[int, Path] = {}
    for image in images:
        image_id = int(image["id"])
        sizes[image_id] = (int(image["width"]), int(image["height"]))
        files[image_id] = folder / image["file_name"]
        if not files[image_id].is_file():
            raise DataError(f"{path}: image {image_id}'s file {image['file_name']} does not exist in {folder}")
    for a in annotations:
        by_image[_checked_annotation(a, path, sizes, class_of)].append(a)
    order = sorted(files)
    boxes = []
    for image_id in order:
        rows = [(class_of[int(a["category_id"])], x, y, x + w, y + h) for a in by_image[image_id] for x, y, w, h in [map(float, a["bbox"])]]
        boxes.append(np.array(rows, dtype=np.float32).reshape(-1, 5))
    return [files[i] for i in order], [sizes[i] for i in order], boxes, found


def _checked_annotation(a: dict, path: Path, sizes: dict[int, tuple[int, int]], class_of: dict[int, int]) -> int:
    """The image id of annotation `a`, once its box and category are known to be usable."""
    name = f"{path}: annotation {a.get('id', '?')}"
    image_id = int(a.get("image_id", -1))
    if image_id not in sizes:
        raise DataError(f"{name} belongs to image {image_id}, which `images` does not list; add the image or drop the annotation")
    if int(a.get("category_id", -1)) not in class_of:
        raise DataError(f"{name} has category_id {a.get('category_id')}, not among the declared categories {sorted(class_of)}; declare it or fix the id")
    bbox = a.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) and np.isfinite(v) for v in bbox)):
        raise DataError(f"{name} has bbox {bbox!r}; a COCO box is [x, y, width, height] in pixels")
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        raise DataError(f"{name} has a box of zero area ({w} x {h} px); drop it or give its real size")
    width, height = sizes[image_id]
    if x < -EDGE_TOLERANCE or y < -EDGE_TOLERANCE or x + w > width + EDGE_TOLERANCE or y + h > height + EDGE_TOLERANCE:
        raise DataError(f"{name}: box [x {x}, y {y}, w {w}, h {h}] reaches outside its {width}x{height} image; clip it to the image")
    return image_id


@SOURCES.register("coco")
def load_coco(cfg: DataConfig) -> Streamed:
    if cfg.path is None:
        raise DataError("data.source coco needs data.path: a folder with train/ and test/ (and optionally val/), each holding instances.json and its images")
    root = Path(cfg.path)
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder; give the folder holding train/ and test/ in COCO format")
    missing = [s for s in ("train", "test") if not (root / s).is_dir()]
    if missing:
        raise DataError(f"{root}: no {' or '.join(missing)} folder; a coco data set has train/ and test/ (each with {ANNOTATIONS}), val/ optional")
    train = read_split(root / "train", None)
    categories = train[3]
    splits = {"train": train, "test": read_split(root / "test", categories)}
    if (root / "val").is_dir():
        splits["val"] = read_split(root / "val", categories)
    size = input_size(cfg, splits, root)
    if not train[0]:
        raise DataError(f"{root / 'train' / ANNOTATIONS}: lists no images; the training split needs some")
    channels = cfg.channels or channels_of(train[0][0])
    most = max(1, max(len(b) for files, _, boxes, _ in splits.values() for b in boxes or [[]]))
    datasets = {name: CocoImages(files, sizes, boxes, channels, size, most) for name, (files, sizes, boxes, _) in splits.items()}
    return Streamed(
        train=datasets["train"], test=datasets["test"], val=datasets.get("val"), class_names=[categories[c] for c in sorted(categories)],
        description=f"coco {root} ({len(train[0])} train images, {len(categories)} categories, letterboxed to {size[1]}x{size[0]})",
        resize={"letterbox": [size[0], size[1]]}, targets="boxes",
    )


def channels_of(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return 1 if image.mode in ("L", "1", "I", "I;16", "F") else 3


def input_size(cfg: DataConfig, splits: dict, root: Path) -> tuple[int, int]:
    """(height, width) every image is letterboxed to: `input_size`, or the one size all images share."""
    if cfg.input_size is not None:
        return (cfg.input_size, cfg.input_size) if isinstance(cfg.input_size, int) else tuple(cfg.input_size)
    seen = {size for _, sizes, _, _ in splits.values() for size in sizes}
    if len(seen) != 1:
        raise DataError(f"{root}: images come in {len(seen)} sizes ({', '.join(f'{w}x{h}' for w, h in sorted(seen)[:4])}…); set data.input_size to letterbox them to one")
    width, height = seen.pop()
    return height, width
