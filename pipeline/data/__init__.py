"""Data: each source turns a `DataConfig` into train/val/test splits of normalised images.

`config.py` is the recipe's `data:` section; the sources (`embedded`, `fashion_mnist`, `npz`,
`image_folder`, `factory`) register themselves in `registry.py` and return raw arrays or streamed
datasets; `loading.py` turns either into `DataSplits` through the data contract (`contract.py`), one
plan of indices (`index_plan.py`) and the training split's statistics (`normalisation.py`);
`splits.py` is how every stage reads a split.
"""

from pipeline.data import coco, embedded, factory, fashion_mnist, image_folder, npz, yolo  # noqa: F401, I001  (each source registers itself, before DataConfig lists them)
from pipeline.data.config import DataConfig
from pipeline.data.index_plan import trained_on_validation_note
from pipeline.data.loading import load_data
from pipeline.data.normalisation import STATS_SAMPLE, channel_statistics
from pipeline.data.splits import DataSplits, Split

__all__ = ["STATS_SAMPLE", "DataConfig", "DataSplits", "Split", "channel_statistics", "load_data", "trained_on_validation_note"]
