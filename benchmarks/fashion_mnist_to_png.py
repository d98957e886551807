"""Write Fashion-MNIST out as an image folder (one folder per class, train/ and test/), for the
image_folder source, its recipe and its benchmarks.

    python benchmarks/fashion_mnist_to_png.py OUT [--source fashion-mnist|embedded] [--rgb --size 64]

`--rgb --size 64` upscales each 28x28 image to 64x64 and spreads it over three channels with a
random tint per image (seeded; it carries no information about the class), an RGB stand-in of a
realistic size whose channels differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data import DataConfig
from pipeline.data.registry import SOURCES


def write(out: Path, source: str, rgb: bool, size: int) -> int:
    raw = SOURCES.get(source)(DataConfig(source=source))
    tints = np.random.default_rng(0)
    written = 0
    for split, x, y in (("train", raw.x_train, raw.y_train), ("test", raw.x_test, raw.y_test)):
        for k, name in enumerate(raw.class_names):
            (out / split / name.replace("/", "-")).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(x, y)):
            picture = Image.fromarray(image)
            if size != image.shape[-1]:
                picture = picture.resize((size, size), Image.BILINEAR)
            if rgb:
                grey = np.asarray(picture, dtype=np.float32)[..., None]
                picture = Image.fromarray(np.clip(grey * tints.uniform(0.7, 1.0, 3), 0, 255).astype(np.uint8), "RGB")
            picture.save(out / split / raw.class_names[label].replace("/", "-") / f"{i:05d}.png")
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", default="fashion-mnist", choices=["fashion-mnist", "embedded"])
    parser.add_argument("--rgb", action="store_true")
    parser.add_argument("--size", type=int, default=28)
    args = parser.parse_args()
    print(f"{write(args.out, args.source, args.rgb, args.size)} images under {args.out}")


if __name__ == "__main__":
    main()
