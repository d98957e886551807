"""The stage contract and registry.

A stage is one module in `pipeline/stages/`: a typed config (a pydantic model) and one function
`run(cfg, state, ctx) -> state`, registered under the name recipes use. The runner knows stages
only through what they declare here: which artifacts they need and make, whether they change the
weights (which makes earlier exports stale), and whether device profiles feed their result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from pydantic import BaseModel

from pipeline.core.progress import progress
from pipeline.core.registry import Registry
from pipeline.core.state import ModelState
from pipeline.data import DataSplits
from pipeline.deploy.profiles import DeviceProfile


@dataclass
class StageContext:
    """What a stage may use besides the state: data, compute device, its folder, logging."""

    data: DataSplits
    device: torch.device
    run_dir: Path
    stage_dir: Path
    seed: int
    profiles: list[DeviceProfile]
    recipe_meta: dict
    log: logging.Logger
    quiet: bool = False
    metrics: dict = field(default_factory=dict)
    model_before: Callable[[str], torch.nn.Module] | None = None  # see runner.earlier_models

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def artifact(self, filename: str) -> tuple[Path, str]:
        """A path in this stage's folder to write, and the run-relative reference to keep in the state."""
        path = self.stage_dir / filename
        return path, str(path.relative_to(self.run_dir))

    def resolve(self, ref: str) -> Path:
        return self.run_dir / ref

    def progress(self, iterable, total: int | None = None, desc: str = ""):
        return progress(iterable, total=total, desc=desc, quiet=self.quiet)


StageFn = Callable[[BaseModel, ModelState, StageContext], ModelState]
StaticCheck = Callable[[BaseModel, list[str]], list[str]]  # (config, names of earlier stages) -> problems


@dataclass(frozen=True)
class Stage:
    name: str
    config: type[BaseModel]
    run: StageFn
    requires: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    changes_model: bool = False
    uses_device_profiles: bool = False
    check: StaticCheck | None = None  # recipe-time check against the stages before it (e.g. a teacher's stage exists)

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0] if self.run.__doc__ else ""


STAGES: Registry[Stage] = Registry("stage")


def stage(name: str, config: type[BaseModel], **declared) -> Callable[[StageFn], StageFn]:
    """Register `run` as stage `name`; `declared` are the `Stage` fields (requires, provides, …)."""

    def register(run: StageFn) -> StageFn:
        STAGES.register(name)(Stage(name=name, config=config, run=run, **declared))
        return run

    return register
