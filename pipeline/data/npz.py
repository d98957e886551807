"""User data as one `.npz` file: x_train, y_train, x_test, y_test, optionally class_names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.errors import DataError
from pipeline.data.registry import SOURCES, RawData

if TYPE_CHECKING:
    from pipeline.data import DataConfig

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
    y_train = arrays["y_train"]
    if "class_names" in arrays.files:
        class_names = [str(c) for c in arrays["class_names"]]
    else:
        class_names = [str(i) for i in range(int(max(y_train.max(), arrays["y_test"].max())) + 1)]
    return RawData(
        x_train=arrays["x_train"],
        y_train=y_train,
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        class_names=class_names,
        description=f"npz ({path})",
    )
