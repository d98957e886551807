"""Fashion-MNIST from its IDX files (gzipped or raw), as Debian's `dataset-fashion-mnist` installs them."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.registry import SOURCES, RawData

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (
    "Install them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
    f"{SYSTEM_DIR}), or download the four *-ubyte.gz files from the zalandoresearch/fashion-mnist "
    "repository and point `data.path` in the recipe, or the COMPRESS_DATA environment variable, at their directory."
)


def candidate_dirs(cfg: DataConfig) -> list[Path]:
    """Where to look, in order: the recipe's path, COMPRESS_DATA, the Debian location."""
    if cfg.path:
        return [Path(cfg.path).expanduser()]
    dirs = []
    if os.environ.get("COMPRESS_DATA"):
        env = Path(os.environ["COMPRESS_DATA"]).expanduser()
        dirs += [env, env / "fashion-mnist"]
    return dirs + [SYSTEM_DIR]


def find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file: 2 zero bytes, a dtype code (0x08 = uint8), the rank, then big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not a uint8 IDX file (bad magic number)")
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    offset = 4 + 4 * rank
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise DataError(f"{path} is truncated: header says {dims}, file holds {len(data) - offset} of {expected} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


@SOURCES.register("fashion-mnist")
def load_fashion_mnist(cfg: DataConfig) -> RawData:
    looked = candidate_dirs(cfg)
    for directory in looked:
        paths = {key: find_file(directory, stem) for key, stem in FILES.items()}
        if all(paths.values()):
            arrays = {key: read_idx(path) for key, path in paths.items()}
            return RawData(class_names=CLASS_NAMES, description=f"Fashion-MNIST ({directory})", **arrays)
    raise DataError(
        "Fashion-MNIST IDX files not found. Looked in: "
        + ", ".join(str(d) for d in looked)
        + f" for {', '.join(s + '[.gz]' for s in FILES.values())}. "
        + HOW_TO_GET
    )
