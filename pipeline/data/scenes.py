"""A detection data set made from real images that install here: Fashion-MNIST items on larger canvases.

No detection data set can be installed or downloaded on the machines this project runs on, so
`compress data scenes` composes one and writes it in COCO format (what the `coco` source reads):
each canvas (default 96 x 96, grey) holds 1-`MOST_OBJECTS` items of a classification source
(the embedded subset or the full Fashion-MNIST), each resized to 14-48 px (several scales), placed
at random, overlapping earlier ones by at most `MAX_OVERLAP` IoU, drawn over them (the brighter
pixel wins, so occluded parts stay visible where the top item is dark); plus clutter: unlabelled
fragments (6-10 px crops of other items) and faint noise. A box is the tight box of the item's
visible ink (pixels above `INK`), not its 28 x 28 frame. Train and validation scenes draw items from
disjoint halves of the source's training images; test scenes from its test images only. The same
seed writes the same files. `layout="yolo"` writes the same scenes in the YOLO (Ultralytics) layout
instead: images/<split>/, labels/<split>/*.txt (`class cx cy w h`, fractions) and data.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.progress import progress

MOST_OBJECTS = 4
SCALES = (14, 48)  # item side in pixels on the canvas
MAX_OVERLAP = 0.3  # IoU an item may share with any earlier one
INK = 24  # of 255: a pixel brighter than this is part of the item (its box)
FRAGMENTS = (0, 3)  # unlabelled clutter per canvas
NOISE = 12  # peak of the uniform background noise, of 255


def scene(items: np.ndarray, labels: np.ndarray, clutter: np.ndarray, canvas: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """One canvas (uint8 [canvas, canvas]) and its objects [(class, [x, y, w, h])]."""
    from PIL import Image

    image = rng.integers(0, NOISE + 1, size=(canvas, canvas)).astype(np.uint8)
    for _ in range(int(rng.integers(FRAGMENTS[0], FRAGMENTS[1] + 1))):
        source = clutter[int(rng.integers(len(clutter)))]
        side = int(rng.integers(6, 11))
        top, left = (int(v) for v in rng.integers(0, 28 - side, size=2))
        y, x = (int(v) for v in rng.integers(0, canvas - side, size=2))
        np.maximum(image[y : y + side, x : x + side], source[top : top + side, left : left + side], out=image[y : y + side, x : x + side])
    placed: list[np.ndarray] = []
    objects = []
    for item, label in zip(items, labels):
        side = int(rng.integers(SCALES[0], min(SCALES[1], canvas) + 1))
        pixels = np.asarray(Image.fromarray(item).resize((side, side), Image.BILINEAR))
        ink = np.argwhere(pixels > INK)
        if not len(ink):
            continue
        (top, left), (bottom, right) = ink.min(0), ink.max(0) + 1
        for _ in range(20):  # a place that overlaps the earlier items little enough
            y, x = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
            box = np.array([x + left, y + top, x + right, y + bottom], dtype=np.float64)
            if all(_iou(box, other) <= MAX_OVERLAP for other in placed):
                break
        else:
            continue
        np.maximum(image[y : y + side, x : x + side], pixels, out=image[y : y + side, x : x + side])
        placed.append(box)
        objects.append((int(label), [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]))
    return image, objects


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str], count: int, canvas: int, seed: int, quiet: bool = False,
                layout: str = "coco") -> int:
    """`count` scenes drawn from `images` into `folder` (PNG files + instances.json, or the YOLO
    layout's images/ and labels/ under folder's parent); returns the objects written."""
    from PIL import Image

    if layout == "yolo":
        image_dir, label_dir = folder.parent / "images" / folder.name, folder.parent / "labels" / folder.name
        label_dir.mkdir(parents=True, exist_ok=True)
    else:
        image_dir = label_dir = folder
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    document = {"images": [], "annotations": [], "categories": [{"id": k, "name": n} for k, n in enumerate(class_names)]}
    for image_id in progress(range(count), total=count, desc=f"scenes {folder.name}", quiet=quiet):
        picked = rng.integers(len(images), size=int(rng.integers(1, MOST_OBJECTS + 1)))
        pixels, objects = scene(images[picked], labels[picked], images, canvas, rng)
        name = f"{image_id:06d}.png"
        Image.fromarray(pixels).save(image_dir / name)
        if layout == "yolo":
            (label_dir / f"{image_id:06d}.txt").write_text("".join(
                f"{label} {(x + w / 2) / canvas:.6f} {(y + h / 2) / canvas:.6f} {w / canvas:.6f} {h / canvas:.6f}\n" for label, (x, y, w, h) in objects))
        document["images"].append({"id": image_id, "file_name": name, "width": canvas, "height": canvas})
        for label, bbox in objects:
            document["annotations"].append({"id": len(document["annotations"]) + 1, "image_id": image_id, "category_id": label,
                                            "bbox": [round(v, 2) for v in bbox], "area": round(bbox[2] * bbox[3], 2), "iscrowd": 0})
    if layout == "coco":
        (folder / "instances.json").write_text(json.dumps(document))
    return len(document["annotations"])


def write_scenes(out: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, class_names: list[str],
                 counts: dict[str, int], canvas: int = 96, seed: int = 0, quiet: bool = False, layout: str = "coco") -> dict[str, int]:
    """Train, val and test scenes (`counts`) under `out`; items: train/val from disjoint halves of
    the training images, test from the test images. Returns the objects per split."""
    if canvas < SCALES[0] * 2:
        raise DataError(f"a scene canvas of {canvas} px is too small for items of {SCALES[0]}-{SCALES[1]} px; use at least {SCALES[0] * 2}")
    if x_train.ndim != 3 or x_train.dtype != np.uint8:
        raise DataError(f"scenes are composed from grey uint8 images [N, H, W]; got {x_train.dtype} {list(x_train.shape)}")
    half = len(x_train) // 2
    order = np.random.default_rng(seed).permutation(len(x_train))
    pools = {"train": order[:half], "val": order[half:]}
    written = {}
    for offset, split in enumerate(("train", "val", "test")):
        x, y = (x_test, y_test) if split == "test" else (x_train[pools[split]], y_train[pools[split]])
        written[split] = write_split(out / split, x, y, class_names, counts[split], canvas, seed * 3 + offset, quiet, layout)
    if layout == "yolo":
        (out / "data.yaml").write_text(json.dumps({"names": list(class_names)}) + "\n")  # JSON is YAML
    return written
