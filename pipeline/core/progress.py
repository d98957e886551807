"""Progress bars that stay silent when output is not a terminal (CI logs) or the user asked for --quiet."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None, *, total: int | None = None, desc: str = "", quiet: bool = False, unit: str = "it") -> tqdm:
    """A bar with rate and time left (`unit`: "img" counts images, so the rate reads as images/s)."""
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, unit=unit, unit_scale=unit != "it",
                disable=quiet or not sys.stderr.isatty())
