"""Turn pydantic's errors into lines a user can act on: the field path, what is wrong, what is allowed."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ValidationError


def format_validation_error(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    return "\n".join(format_error_lines(err, model, prefix))


def format_error_lines(err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        loc = [p for p in e["loc"]]
        path = prefix + ".".join(str(p) for p in loc) if loc else prefix.rstrip(".") or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = fields_at(model, loc[:-1])
            msg = f"unknown field; allowed: {', '.join(allowed)}" if allowed else "unknown field"
        elif e["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if isinstance(e.get("input"), (str, int, float, bool)) and e["type"] != "value_error":
                msg += f" (got {e['input']!r})"
        lines.append(f"  - {path}: {msg}")
    return lines


def fields_at(model: type[BaseModel], loc: list) -> list[str]:
    """The field names of the (nested) model found at `loc`, to list the allowed keys."""
    current: typing.Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        current = _model_in(current)
        if current is None or part not in current.model_fields:
            return []
        current = current.model_fields[part].annotation
    found = _model_in(current)
    return list(found.model_fields) if found else []


def _model_in(annotation: typing.Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None
