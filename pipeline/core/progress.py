"""Progress bars that stay silent when output is not a terminal (CI logs) or the user asked for --quiet."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", quiet: bool = False) -> tqdm:
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=quiet or not sys.stderr.isatty())
