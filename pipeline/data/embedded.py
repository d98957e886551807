"""The embedded default: 6,000 + 1,000 Fashion-MNIST images shipped in the package (MIT, see embedded/LICENSE).

It lets `compress run recipes/quickstart.yaml` work on any machine with no download and no extra
dependency, on real images of the same kind as the full dataset.
"""

from __future__ import annotations

import io
import lzma
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data.registry import SOURCES, RawData

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig
from pipeline.data.fashion_mnist import CLASS_NAMES

ARCHIVE = Path(__file__).parent / "embedded" / "fashion_mnist_mini.npz.xz"


@SOURCES.register("embedded")
def load_embedded(cfg: DataConfig) -> RawData:
    with lzma.open(ARCHIVE) as f:
        arrays = np.load(io.BytesIO(f.read()))
        return RawData(
            x_train=arrays["x_train"],
            y_train=arrays["y_train"],
            x_test=arrays["x_test"],
            y_test=arrays["y_test"],
            class_names=CLASS_NAMES,
            description="embedded Fashion-MNIST subset (6k train / 1k test)",
        )
