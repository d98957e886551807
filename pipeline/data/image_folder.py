"""`image_folder`: one folder per class, images decoded with Pillow as they are read.

    root/train/<class>/*.png|jpg|…   root/test/<class>/…   (root/val/<class>/… optional)
    root/<class>/*.png|jpg|…          (one root: `test_fraction` of each class is held out for test)

Images become float tensors [C,H,W] in [0, 1]: grey (`channels: 1`) or RGB (`channels: 3`; default:
the first image's mode). With `input_size: S` each image's shorter side is resized to S and the
centre S x S (or `[H, W]`) cropped, the rule written into the exported model's metadata; without it
every image must already have one size. Nothing is read until a batch asks for it.

Hidden files and folders (`.DS_Store`, the `._name.png` companions a copy from macOS leaves beside
every image, `.ipynb_checkpoints/`) are not data and are passed over. A link that points nowhere, a
class folder left without images, an image over Pillow's decompression-bomb limit: each is named in
a clear error (or, with `skip_unreadable`, the unreadable files are skipped and counted), because
a class that silently vanishes trains a model on fewer classes than the data has.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.core.errors import DataError
from pipeline.data.registry import SOURCES, Streamed

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_SEED = 0  # a one-root folder is split into train/test the same way on every run
UPSCALE_WARNING = 8  # an image enlarged more than this many times to reach input_size is probably not what was meant
log = logging.getLogger("compress")


def _pil():
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a dependency
        raise DataError("the image_folder source needs Pillow: pip install Pillow") from None
    return Image, UnidentifiedImageError


class ImageFiles(Dataset):
    """(path, label) pairs decoded on demand; picklable, so DataLoader workers can read them."""

    def __init__(self, files: list[tuple[Path, int]], channels: int, crop: tuple[int, int] | None, shorter_side: int | None):
        self.files, self.channels, self.crop, self.shorter_side = files, channels, crop, shorter_side
        self.size: tuple[int, int] | None = None  # without input_size: the first image's (width, height), which all must share

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        path, label = self.files[index]
        image = decode(path, self.channels)
        if self.crop is not None:
            image = resize_and_crop(image, self.shorter_side, self.crop, path)
        elif self.size is None:
            self.size = image.size
        elif image.size != self.size:
            raise DataError(
                f"{path} is {image.size[0]}x{image.size[1]} but the other images are {self.size[0]}x{self.size[1]}; "
                "set data.input_size to resize and centre-crop them to one size"
            )
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array)), label


def decode(path: Path, channels: int):
    Image, Unidentified = _pil()
    try:
        with Image.open(path) as image:
            return image.convert("L" if channels == 1 else "RGB")
    except Image.DecompressionBombError as e:
        raise DataError(
            f"{path} is too large to decode safely ({e}); shrink or delete it, or set data.skip_unreadable: true to skip such images"
        ) from None
    except (Unidentified, OSError, ValueError) as e:
        raise DataError(f"{path} cannot be decoded as an image ({e}); fix or delete it, or set data.skip_unreadable: true") from None


_upscale_warned = False  # once per process: a folder of thumbnails would otherwise print a line per image


def resize_and_crop(image, shorter_side: int, crop: tuple[int, int], path: Path | None = None):
    global _upscale_warned
    Image, _ = _pil()
    width, height = image.size
    scale = shorter_side / min(width, height)
    if scale > UPSCALE_WARNING and not _upscale_warned:
        _upscale_warned = True
        log.warning(
            f"{path or 'an image'} is {width}x{height} and is enlarged {scale:.0f}x to reach data.input_size {shorter_side}: "
            "check that it is the image you meant (further ones are not listed)"
        )
    image = image.resize((max(crop[1], round(width * scale)), max(crop[0], round(height * scale))), Image.BILINEAR)
    left, top = (image.size[0] - crop[1]) // 2, (image.size[1] - crop[0]) // 2
    return image.crop((left, top, left + crop[1], top + crop[0]))


def hidden(path: Path, root: Path) -> bool:
    """A file or folder whose name (or a parent's, below `root`) starts with a dot: not data."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def class_files(root: Path, skip_broken_links: bool = False) -> dict[str, list[Path]]:
    """Class name -> its image files, for the class folders directly under `root`. A link to a file
    that does not exist is an error (or skipped, with `skip_broken_links`); a class folder with no
    image is an error, so no class is dropped without a word."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; image_folder wants one folder per class (root/<class>/*.png)")
    found, empty = {}, []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not hidden(p, root)):
        candidates = [p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and not hidden(p, folder)]
        dangling = [p for p in candidates if p.is_symlink() and not p.exists()]
        if dangling and not skip_broken_links:
            raise DataError(
                f"{dangling[0]} is a link to {dangling[0].readlink()}, which does not exist ({len(dangling)} such link(s) in {folder}); "
                "fix or delete the links, or set data.skip_unreadable: true to skip them"
            )
        images = sorted(p for p in candidates if p.is_file())
        if images:
            found[folder.name] = images
        else:
            empty.append(folder)
    if found and empty:
        raise DataError(
            f"class folder {empty[0]} holds no readable images ({len(empty)} such folder(s) under {root}), so its class would be "
            "dropped from the model; add its images or remove the folder"
        )
    if not found:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in EXTENSIONS][:3]
        hint = f" (it holds images directly, e.g. {', '.join(loose)}: move them into one folder per class)" if loose else ""
        raise DataError(f"{root} has no class subfolders with images{hint}; image_folder wants root/<class>/*.png|jpg|…")
    return found


def usable(files: list[Path], channels: int, skip: bool, log: list[str]) -> list[Path]:
    """With `skip_unreadable`, every file is opened once now and the unreadable ones are dropped
    and counted; otherwise an unreadable file stops the run when it is read, naming it."""
    if not skip:
        return files
    kept, skipped = [], []
    for path in files:
        try:
            decode(path, channels)
            kept.append(path)
        except DataError:
            skipped.append(path)
    if skipped:
        log.append(f"skipped {len(skipped)} unreadable image(s), first {skipped[0]}")
    if files and not kept:
        raise DataError(f"every image of {files[0].parent} is unreadable, so its class would be dropped from the model; fix the images or remove the folder")
    return kept


def first_image_channels(path: Path) -> int:
    Image, Unidentified = _pil()
    try:
        with Image.open(path) as image:
            return 1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    except (Unidentified, OSError, Image.DecompressionBombError) as e:
        raise DataError(f"{path} cannot be decoded as an image ({e}); fix or delete it, or set data.channels") from None


@SOURCES.register("image_folder")
def load_image_folder(cfg: DataConfig) -> Streamed:
    if not cfg.path:
        raise DataError("data.path: the image_folder source needs the folder holding one folder per class (or train/ and test/ folders of them)")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path: {root} does not exist or is not a folder")
    if (root / "train").is_dir():
        skip = cfg.skip_unreadable
        splits = {"train": class_files(root / "train", skip), "test": class_files(root / "test", skip) if (root / "test").is_dir() else None}
        if splits["test"] is None:
            raise DataError(f"{root} has train/ but no test/ folder; add root/test/<class>/… (the same classes) or put the class folders directly under {root}")
        if (root / "val").is_dir():
            splits["val"] = class_files(root / "val", skip)
        names = list(splits["train"])
        for name, classes in splits.items():
            if list(classes) != names:
                missing, extra = sorted(set(names) - set(classes)), sorted(set(classes) - set(names))
                raise DataError(
                    f"{root / name} has other classes than {root / 'train'}: missing {missing or 'none'}, extra {extra or 'none'}; "
                    "every split needs the same class folders"
                )
    else:
        by_class = class_files(root, cfg.skip_unreadable)
        names = list(by_class)
        shuffler = random.Random(SPLIT_SEED)
        splits = {"train": {}, "test": {}}
        for name, files in by_class.items():
            files = files[:]
            shuffler.shuffle(files)
            n_test = max(1, round(len(files) * cfg.test_fraction))
            splits["test"][name], splits["train"][name] = sorted(files[:n_test]), sorted(files[n_test:])

    channels = cfg.channels or first_image_channels(next(iter(splits["train"].values()))[0])
    crop = None
    if cfg.input_size is not None:
        crop = (cfg.input_size, cfg.input_size) if isinstance(cfg.input_size, int) else tuple(cfg.input_size)
    shorter = None if crop is None else (cfg.input_size if isinstance(cfg.input_size, int) else min(crop))
    notes: list[str] = []

    def dataset(classes: dict[str, list[Path]]) -> ImageFiles:
        files = [(path, label) for label, name in enumerate(names) for path in usable(classes[name], channels, cfg.skip_unreadable, notes)]
        return ImageFiles(files, channels, crop, shorter)

    train, test = dataset(splits["train"]), dataset(splits["test"])
    val = dataset(splits["val"]) if "val" in splits else None
    counts = f"{len(train)} train / {len(test)} test" + (f" / {len(val)} val" if val is not None else "")
    description = f"image folder {root} ({len(names)} classes, {counts}, {'grey' if channels == 1 else 'RGB'}" + (f"; {'; '.join(notes)}" if notes else "") + ")"
    resize = None if crop is None else {"shorter_side": shorter, "center_crop": list(crop), "interpolation": "bilinear"}
    return Streamed(train=train, test=test, val=val, class_names=names, description=description, resize=resize)
