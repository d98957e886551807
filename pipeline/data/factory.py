"""`dataset`: the user's own `torch.utils.data.Dataset`s, from `factory: "package.module:function"`.

The function returns a mapping: `train` and `test` Datasets (and optionally `val`; without it the
validation split is carved from `train`), and `class_names`. Items are `(image tensor [C,H,W]
float, int label)`, not yet normalised: the pipeline measures per-channel mean and std on the
training split and writes them into the exported model, so the device feeds it the same way.

    def my_data(root="data/"):
        return {"train": MyImages(root, "train"), "test": MyImages(root, "test"), "class_names": ["ok", "defect"]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch.utils.data import Dataset

from pipeline.core.errors import DataError, what_failed
from pipeline.core.user_code import load_function
from pipeline.data.registry import SOURCES, Streamed

if TYPE_CHECKING:
    from pipeline.data.config import DataConfig


@SOURCES.register("dataset")
def load_user_datasets(cfg: DataConfig) -> Streamed:
    spec = cfg.factory
    if not spec or ":" not in spec:
        raise DataError('data.factory: the dataset source needs "package.module:function" returning {train, test, val?, class_names}')
    func = load_function(spec, "data.factory", DataError)
    try:
        made = func(**cfg.factory_kwargs)
    except Exception as e:  # noqa: BLE001  user code may raise anything
        raise DataError(f"data.factory {spec}(**{cfg.factory_kwargs}) failed: {what_failed(e)}") from e
    if not isinstance(made, dict):
        raise DataError(f"data.factory {spec} returned a {type(made).__name__}; return a dict with train, test, val (optional) and class_names")
    missing = [k for k in ("train", "test", "class_names") if k not in made]
    if missing:
        raise DataError(f"data.factory {spec} returned no {', '.join(missing)}; return a dict with train, test, val (optional) and class_names")
    for key in ("train", "test", "val"):
        value = made.get(key)
        if value is not None and not (isinstance(value, Dataset) and hasattr(value, "__len__")):
            raise DataError(f"data.factory {spec}: {key} is a {type(value).__name__}, not a torch.utils.data.Dataset with a length")
    names = made["class_names"]
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"data.factory {spec}: class_names must be a non-empty list of strings (got {names!r})")
    return Streamed(train=made["train"], test=made["test"], val=made.get("val"), class_names=list(names), description=f"datasets from {spec}")
