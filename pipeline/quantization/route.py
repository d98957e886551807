"""A quantization route: one back end × one method, described once.

The quantize stage's config is validated against the routes (which methods a back end has, which
calibrations and formats a route takes), the recipe check asks a route whether it can quantize each
nested width's file, and the stage runs the chosen route's `build` and checks the file it wrote the
same way whatever the route. A new route is one `Route` registered in its back end's module
(`ort_routes.py`, `inc_routes.py`); nothing else names it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

import numpy as np
import torch
from torch import nn

from pipeline.quantization.ort_backend import StaticSettings
from pipeline.quantization.qat import QATConfig
from pipeline.training.session import TrainingContext


class RouteContext(TrainingContext, Protocol):
    """What a route may use of the quantize stage's context (a `StageContext` is one)."""

    stage_dir: Path  # scratch files (prepared graphs, search trials) go here and are removed

    def progress(self, iterable, total: int | None = None, desc: str = ""): ...

    def score(self, subject: nn.Module | Path, split: Literal["val", "test"]) -> float: ...


@dataclass(frozen=True)
class Job:
    """One INT8 file to make, with every setting a route reads (the stage builds it from its config)."""

    model: nn.Module  # the float model at full width (QAT and neural-compressor start from it)
    fp32: Path  # its checked FP32 ONNX file (onnxruntime's post-training routes start from it)
    out: Path
    samples: np.ndarray  # calibration samples from the training split
    settings: StaticSettings
    calibrations: tuple[str, ...]  # accuracy-aware: to try, in order
    max_accuracy_drop: float  # accuracy-aware: points on the validation split
    max_fp32_nodes: int | None
    qat: QATConfig
    parity_inputs: torch.Tensor  # for an exporter's own parity check (QAT exports the converted model)


Built = tuple[str, dict]  # (how the file was made, for its metadata; details for the stage's metrics, e.g. a search summary)


@dataclass(frozen=True)
class Route:
    backend: str
    method: str
    build: Callable[[Job, RouteContext], Built]
    calibrations: tuple[str, ...]  # activation-range methods it takes
    formats: tuple[str, ...] = ("qdq",)
    quantizes_file: bool = False  # it quantizes an ONNX file, so each nested width's file too (not the torch model at full width)
    calibrated: bool = True  # it reads calibration samples
    trains: bool = False
    coverage_hint: str = ""  # added when few compute ops run in INT8
    extra: str | None = None  # the pip extra its back end needs (pyproject.toml), when not a core dependency


ROUTES: dict[tuple[str, str], Route] = {}


def register(route: Route) -> Route:
    key = (route.backend, route.method)
    if key in ROUTES:
        raise ValueError(f"quantization route {route.backend} {route.method} is registered twice")
    ROUTES[key] = route
    return route


def backends() -> tuple[str, ...]:
    return tuple(dict.fromkeys(backend for backend, _ in ROUTES))


def methods(backend: str | None = None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for b, m in ROUTES if backend in (None, b)))


def calibrations() -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for route in ROUTES.values() for c in route.calibrations))


def route_for(backend: str, method: str) -> Route:
    """The route, or a ValueError naming what the back end supports."""
    try:
        return ROUTES[(backend, method)]
    except KeyError:
        raise ValueError(f"method {method!r} is not available with backend {backend!r}; it supports: {', '.join(methods(backend))}") from None


def report_budget(met: bool, drop: float, budget: float, log: logging.Logger) -> None:
    """The accuracy-aware routes' last word: within the budget, or the most accurate kept and what to try."""
    if met:
        log.info(f"quantize accuracy_aware: drop {drop:.2f} points, within the {budget} budget")
    else:
        log.warning(
            f"quantize accuracy_aware: no candidate met the {budget}-point budget; keeping the most accurate "
            f"(drop {drop:.2f} points). Try method qat, a larger max_fp32_nodes, or a looser budget."
        )
