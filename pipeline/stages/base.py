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
from typing import Callable, Literal

import torch
from pydantic import BaseModel

from pipeline.core.checkpoints import weights_digest
from pipeline.core.epoch_feed import StageFeed
from pipeline.core.metrics import Metric, top1
from pipeline.core.progress import progress
from pipeline.core.registry import Registry
from pipeline.core.state import ModelState
from pipeline.data import DataSplits
from pipeline.deploy.profiles import DeviceProfile
from pipeline.runtime.onnx_files import file_accuracy
from pipeline.tasks import Task
from pipeline.tasks.classification import CLASSIFICATION
from pipeline.training.evaluation import accuracy, model_metrics
from pipeline.training.session import Trained


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
    metric: Metric = top1  # the recipe's `metric`: what "accuracy" means for budgets and accuracy-aware INT8
    feed: StageFeed | None = None  # told each training epoch's validation figure and each schedule's end (core.epoch_feed)
    task: Task = CLASSIFICATION  # the recipe's `task`: its objective, augmentation, prediction layer

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def artifact(self, filename: str) -> tuple[Path, str]:
        """A path in this stage's folder to write, and the run-relative reference to keep in the state."""
        path = self.stage_dir / filename
        return path, f"{self.stage_dir.name}/{filename}"  # the stage folder's name: the same on a rank's scratch copy

    def resolve(self, ref: str) -> Path:
        return self.run_dir / ref

    def progress(self, iterable, total: int | None = None, desc: str = ""):
        return progress(iterable, total=total, desc=desc, quiet=self.quiet)

    def score(self, subject: torch.nn.Module | Path, split: Literal["val", "test"]) -> float:
        """The recipe's metric of a model, or of a model file run in its own runtime, on a split.
        Every figure a stage reports or chooses by goes through here, so none can forget the
        metric; choices use "val", and "test" is the figure reported after them."""
        data = {"val": self.data.val, "test": self.data.test}[split]
        if isinstance(subject, torch.nn.Module):
            return accuracy(subject, data, metric=self.metric)
        return file_accuracy(Path(subject), data, metric=self.metric)

    def figures(self, model: torch.nn.Module) -> dict:
        """Test and validation metric, params, MACs and size of a PyTorch model (`model_metrics`)."""
        return model_metrics(model, self.data, metric=self.metric)

    def record_training(self, state: ModelState, trained: Trained, source: str, **details) -> dict:
        """After the stage trained the model: test and validation accuracy, params, MACs, the history and each head's
        accuracy into the metrics. Until something compresses the model, these figures are the
        baseline of accuracy-drop budgets, and earlier exports are stale (`weights_trained`)."""
        metrics = self.figures(state.model)
        self.metrics.update(metrics, **details, history=trained.history)
        if trained.heads_accuracy is not None:
            self.metrics["heads_accuracy"] = trained.heads_accuracy
        state.weights_trained(metrics, source)
        return metrics


@dataclass(frozen=True)
class Earlier:
    """What the stages before this one leave, as a recipe-time check sees it.

    `capabilities` are what they declared they add to the model (`heads`); `names` are the recipe's
    stage names, for configs that name a stage themselves (a teacher `before:prune`);
    `device_runtimes` what the recipe's devices can run, `device_names` what their profiles are called. `makers` says
    which registered stages add a capability, so an error can say what to put first without a
    stage naming another.
    """

    names: tuple[str, ...]
    capabilities: frozenset[str]
    makers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    device_runtimes: tuple[str, ...] = ()  # every runtime the recipe's device profiles admit
    device_names: tuple[str, ...] = ()  # the recipe's device profiles' names

    def who_adds(self, capability: str) -> str:
        return " or ".join(self.makers.get(capability, ())) or f"a stage adding {capability}"


StageFn = Callable[[BaseModel, ModelState, StageContext], ModelState]
StaticCheck = Callable[[BaseModel, Earlier], list[str]]  # (config, what earlier stages leave) -> problems


@dataclass(frozen=True)
class Stage:
    """What the runner and `recipe check` know of a stage.

    `requires` / `provides` are artifacts (`onnx_fp32`, `onnx_int8`): a stage that `changes_model`
    makes earlier ones stale. `adds` are capabilities of the model that last until the end of the
    recipe (`heads`). `trains` says whether every process of a torchrun run takes part.
    `removes_channels`: the stage may leave a smaller network than it was given (pruning, a width
    picked from nested ones); without such a stage, the model as built bounds the final one below.
    """

    name: str
    config: type[BaseModel]
    run: StageFn
    requires: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    adds: tuple[str, ...] = ()
    changes_model: bool = False
    removes_channels: bool = False
    uses_device_profiles: bool = False
    uses_device_runtimes: bool = False  # only the runtimes the profiles admit feed the result (its fingerprint has them, not budgets)
    check: StaticCheck | None = None  # recipe-time check against the stages before it (e.g. heads exist)
    trains: bool | Callable[[BaseModel], bool] = False  # (or: whether this config trains) see `trains_with`
    tasks: tuple[str, ...] = ("classification",)  # the recipe tasks it takes (`pipeline/tasks/`); recipe check refuses the others

    def trains_with(self, cfg: BaseModel) -> bool:
        """Whether the stage trains with this config. Under torchrun, every rank runs a stage that
        trains (as DistributedDataParallel); rank 0 alone runs the others (export, quantize,
        validate: work that would only be repeated, or timings that other ranks would disturb) and
        the other ranks load what it wrote. A stage that trains and does not say so still works,
        on rank 0 alone."""
        return self.trains(cfg) if callable(self.trains) else self.trains

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0] if self.run.__doc__ else ""

    def broken_promises(self, weights_before: str, state: ModelState) -> list[str]:
        """What the stage declared and its result contradicts: a file it provides that is not among the
        artifacts, or weights changed by a stage that declares it leaves them alone. The recipe's
        order checks trust these declarations, so the runner holds every stage to them."""
        problems = [f"it provides {name} but left no such file" for name in self.provides if name not in state.artifacts]
        if not self.changes_model and weights_digest(state.model) != weights_before:
            problems.append("it declares that it leaves the weights alone, but they changed")
        return problems


STAGES: Registry[Stage] = Registry("stage")


def stage(name: str, config: type[BaseModel], **declared) -> Callable[[StageFn], StageFn]:
    """Register `run` as stage `name`; `declared` are the `Stage` fields (requires, provides, …)."""

    def register(run: StageFn) -> StageFn:
        STAGES.register(name)(Stage(name=name, config=config, run=run, **declared))
        return run

    return register
