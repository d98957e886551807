"""Recipes: YAML parsed safely and validated into typed models, with every error naming its field path.

Stage entries are one-key mappings, `- prune: {...}`; each is validated by the config class its
stage registered, so adding a stage never touches this file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.config_errors import format_error_lines
from pipeline.core.errors import DeviceProfileError, RecipeError, UserError
from pipeline.core.extras import MissingExtra
from pipeline.core.metrics import resolve
from pipeline.data import DataConfig
from pipeline.deploy.profiles import load_profile
from pipeline.models import ModelConfig
from pipeline.stages import STAGES
from pipeline.stages.base import Earlier
from pipeline.tasks import TASKS
from pipeline.training.augment import Augment


class RecipeHeader(BaseModel):
    """Everything in a recipe but the stage configs, which their stages validate."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="names the run folder runs/<name>")
    seed: int = 0
    accelerator: Literal["auto", "cpu", "cuda"] = Field("auto", description="where training runs; auto = CUDA when present")
    deterministic: bool = Field(True, description="on CUDA: repeatable kernels, so a seed gives the same weights (false: cuDNN's fastest, not repeatable)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig
    stages: list[Any] = Field(min_length=1, description="ordered; each item is `- STAGE_NAME: {config}`")
    devices: list[str] = Field(default_factory=lambda: ["host"], description="device profile names or .yaml paths")
    task: str = Field("classification", description=f"what the model does: {' | '.join(TASKS.names())}")
    metric: str | None = Field(
        None, description='what "accuracy" means for budgets and accuracy-aware INT8: top1 | top5 | coco_map | coco_map50 | '
        '"package.module:function(outputs, labels) -> 0..1"; default: the task\'s (top1; detection: coco_map, mAP@0.5:0.95)'
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; allowed: {', '.join(TASKS.names())}")
        return task

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str | None) -> str | None:
        try:
            metric is None or resolve(metric)
        except UserError as e:
            raise ValueError(str(e)) from None
        return metric

    @model_validator(mode="after")
    def _task_metric(self) -> "RecipeHeader":
        """No metric given: the task's own (top-1 for classification, COCO mAP for detection)."""
        if self.metric is None:
            self.metric = TASKS.get(self.task).metric
        return self


@dataclass(frozen=True)
class StageEntry:
    name: str
    config: BaseModel


@dataclass(frozen=True)
class Recipe:
    header: RecipeHeader
    stages: list[StageEntry]
    sha256: str

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def removes_channels(self) -> bool:
        """Whether a stage may leave a smaller network than the one built (pruning, nested widths);
        if none does, the model as built bounds the final model's size below."""
        return any(STAGES.get(entry.name).removes_channels for entry in self.stages)


def load_recipe(path: str | Path) -> Recipe:
    return parse_recipe(read_yaml(Path(path), "recipe"), source=str(path))


def read_yaml(path: Path, what: str) -> Any:
    """A recipe's (or a tune spec's) YAML, parsed safely; a missing file or bad YAML is one paragraph."""
    if not path.is_file():
        raise RecipeError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None


def parse_recipe(raw: Any, source: str = "recipe") -> Recipe:
    """Validate the whole recipe and report every problem at once, not just the first."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe is a YAML mapping with name, model, stages (got {type(raw).__name__})")
    header, errors = _header(raw)
    entries = _parse_stages(raw.get("stages"), errors) if isinstance(raw.get("stages"), list) else []
    runtimes: list[str] = []
    device_names: list[str] = []
    if header is not None:
        errors += _check_devices(header.devices, runtimes, device_names)
    if header is not None:
        errors += _check_task(header.task, entries)
    if errors:  # the order is only judged over stages that all parsed
        raise _invalid(source, errors, [], only_missing_extras=False)
    errors = _check_stage_order(entries, runtimes, device_names)
    if errors:
        needed = list(dict.fromkeys(e.extra for e in errors if isinstance(e, MissingExtra)))
        raise _invalid(source, errors, needed, only_missing_extras=all(isinstance(e, MissingExtra) for e in errors))
    canonical = json.dumps(raw, sort_keys=True, default=str).encode()
    return Recipe(header=header, stages=entries, sha256=hashlib.sha256(canonical).hexdigest())


def _header(raw: dict) -> tuple[RecipeHeader | None, list[str]]:
    """The recipe's header, or None and every problem in it."""
    try:
        return RecipeHeader.model_validate(raw), []
    except ValidationError as e:
        return None, format_error_lines(e, RecipeHeader)


def _invalid(source: str, errors: list[str], missing_extras: list[str], only_missing_extras: bool) -> RecipeError:
    return RecipeError(f"{source} is not a valid recipe:\n" + "\n".join(errors), missing_extras, only_missing_extras)


def _check_task(task_name: str, entries: list[StageEntry]) -> list[str]:
    """Each stage must take the recipe's task (`Stage.tasks`), and no augmentation the task cannot
    keep its labels true under (detection: erasing, mixup, cutmix hide or blend boxes)."""
    task, errors = TASKS.get(task_name), []
    for i, entry in enumerate(entries):
        spec = STAGES.get(entry.name)
        if task.name not in spec.tasks:
            errors.append(f"  - stages.{i}.{entry.name}: does not take task {task.name} yet (it takes {', '.join(spec.tasks)}); "
                          f"leave it out of a {task.name} recipe")
            continue
        for where, augment in _augment_sections(entry.config, f"stages.{i}.{entry.name}"):
            errors += [f"  - {where}.{option}: task {task.name} cannot keep its labels true under {option}; set it to 0"
                       for option in task.refused_augment(augment)]
    return errors


def _augment_sections(config: BaseModel, where: str) -> list[tuple[str, Augment]]:
    """Every `Augment` inside a stage's config (train.augment, prune.finetune.augment, …) and its path."""
    found = []
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, Augment):
            found.append((f"{where}.{name}", value))
        elif isinstance(value, BaseModel):
            found += _augment_sections(value, f"{where}.{name}")
    return found


def _check_devices(devices: list[str], runtimes: list[str], names: list[str]) -> list[str]:
    """Every device profile must load (names or paths, validated like recipes), so `recipe check`
    catches a typo or a broken profile instead of the first validate stage. Collects the runtimes
    the devices admit into `runtimes` and the profiles' names (a path's profile has its own) into `names`."""
    errors = []
    for i, device in enumerate(devices):
        try:
            profile = load_profile(device)
            runtimes += [r for r in profile.runtimes if r not in runtimes]
            names.append(profile.name)
        except DeviceProfileError as e:
            errors.append(f"  - devices.{i}: " + str(e).replace("\n", "\n    "))
    return errors


def _parse_stages(items: list, errors: list[str]) -> list[StageEntry]:
    entries = []
    for i, item in enumerate(items):
        where = f"stages.{i}"
        if isinstance(item, str):
            item = {item: None}
        if not isinstance(item, dict) or len(item) != 1:
            errors.append(f"  - {where}: each stage is a one-key mapping like `- train: {{epochs: 5}}`")
            continue
        (name, cfg), = item.items()
        if name not in STAGES:
            errors.append(f"  - {where}: unknown stage {name!r}; allowed: {', '.join(STAGES.names())}")
            continue
        config_cls = STAGES.get(name).config
        try:
            entries.append(StageEntry(name, config_cls.model_validate(cfg or {})))
        except ValidationError as e:
            errors += format_error_lines(e, config_cls, prefix=f"{where}.{name}.")
    return entries


def _check_stage_order(entries: list[StageEntry], device_runtimes: list[str], device_names: list[str]) -> list[str]:
    """Each stage's required artifacts must be made by an earlier stage, and not made stale since;
    each stage's own static check (if it declares one) must pass against the stages before it; and
    no stage may change the weights after the last file was made, or what ships is not the final
    model. Every problem is listed, however the mistakes combine."""
    available: set[str] = set()
    capabilities: set[str] = set()
    names = STAGES.names()
    added = {capability for name in names for capability in STAGES.get(name).adds}
    makers = {capability: tuple(name for name in names if capability in STAGES.get(name).adds) for capability in added}
    errors = []
    for i, entry in enumerate(entries):
        spec = STAGES.get(entry.name)
        for artifact in spec.requires:
            if artifact not in available:
                providers = [name for name in names if artifact in STAGES.get(name).provides]
                errors.append(
                    f"  - stages.{i}.{entry.name}: needs {artifact}, which no earlier stage provides"
                    f" (or a later weight-changing stage made stale); put {' or '.join(providers)} before it"
                )
        if spec.check is not None:
            earlier = Earlier(tuple(e.name for e in entries[:i]), frozenset(capabilities), makers, tuple(device_runtimes), tuple(device_names))
            errors += [located(f"  - stages.{i}.{entry.name}: ", problem) for problem in spec.check(entry.config, earlier)]
        if spec.changes_model:
            available.clear()
        available.update(spec.provides)
        capabilities.update(spec.adds)
    return errors + _changed_after_last_file(entries)


def located(where: str, problem: str) -> str:
    """The problem as a line of the error, keeping which extra it is about (`MissingExtra`)."""
    line = where + problem
    return MissingExtra(problem.extra, line) if isinstance(problem, MissingExtra) else line


def _changed_after_last_file(entries: list[StageEntry]) -> list[str]:
    """A stage that changes the weights after the last stage that makes a file: the files (and any
    verdict on them) describe a model the recipe then threw away."""
    making = [i for i, e in enumerate(entries) if STAGES.get(e.name).provides]
    if not making:
        return []
    last = making[-1]
    return [
        f"  - stages.{i}.{e.name}: changes the model after the last file was made (stages.{last}.{entries[last].name}), so the "
        f"files would not hold the final model; move it before stages.{last}.{entries[last].name} or add the file-making stages after it"
        for i, e in enumerate(entries[last + 1 :], start=last + 1)
        if STAGES.get(e.name).changes_model
    ]
