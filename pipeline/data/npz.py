"""User data as one `.npz` file: x_train, y_train, x_test, y_test, optionally class_names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.registry import SOURCES, RawData

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


@SOURCES.register("npz")
def load_npz(cfg: DataConfig) -> RawData:
    if not cfg.path:
        raise DataError("data.path: the npz source needs the path of a .npz file holding " + ", ".join(REQUIRED))
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist; expected a .npz file holding " + ", ".join(REQUIRED))
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable .npz file: {e}") from None
    missing = [k for k in REQUIRED if k not in arrays.files]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; it holds {', '.join(arrays.files)}")
    where = f"npz ({path})"
    x_train, x_test = read(arrays, "x_train", path), read(arrays, "x_test", path)
    y_train, y_test = read(arrays, "y_train", path), read(arrays, "y_test", path)
    class_names = [str(c) for c in read(arrays, "class_names", path)] if "class_names" in arrays.files else None  # None: the contract names 0..max label
    return RawData(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=class_names, description=where)


def read(arrays, key: str, path: Path) -> np.ndarray:
    """One array of the file; pickled (object) arrays are refused, never unpickled."""
    try:
        return arrays[key]
    except ValueError as e:
        raise DataError(
            f"{path}: {key} is stored as pickled Python objects ({e}); save it as a numeric array "
            "(np.savez with uint8/float images and integer labels, class_names as a string array)"
        ) from None
