"""The user's own code, named in a recipe as "package.module:function" (a model factory, a dataset
factory, a metric), loaded in one place so that every such field fails the same way, naming itself."""

from __future__ import annotations

import importlib
from typing import Callable

from pipeline.core.errors import UserError


def load_function(spec: str, field: str, error: type[UserError] = UserError, expected: str = "a function") -> Callable:
    """The callable `spec` names; `error` (naming `field`) when it is malformed, missing or not callable."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise error(f'{field}: "{spec}" must look like "package.module:function"')
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as e:
        raise error(f"{field}: cannot load {spec}: {e}") from None
    if not callable(function):
        raise error(f"{field}: {spec} is a {type(function).__name__}, not {expected}")
    return function
