"""A tune spec: a recipe plus `tune:` (the search space over the recipe's fields, the budget, the seed).

A field path names a recipe field the way an error names it: `train.epochs` (the first stage called
`train`), `stages.2.prune.target.keep_macs` (by position), `model.kwargs.widths`, `data.batch_size`.
Each parameter is one of `{int: [low, high]}`, `{float: [low, high]}` (`log: true` for a log scale)
or `{choice: [a, b, …]}`. A path that does not lead to a valid recipe is refused before any trial
runs, named, with the recipe's paths closest to it.
"""

from __future__ import annotations

import builtins
import copy
import difflib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.core.errors import RecipeError, UserError

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$")
# A searched field whose name ends so changes how many epochs a trial trains or where its rounds fall
# (`train.epochs`, `prune.finetune.epochs`, `prune.steps`): with it, trials reach a pruner's rung at
# unlike points (the rung is read where a schedule ends: a 5-epoch train is judged at epoch 5 against
# a 30-epoch one at epoch 30, before either has pruned), so it stops short schedules for being short.
SCHEDULE_FIELDS = ("epochs", "steps")


class Param(BaseModel):
    model_config = ConfigDict(extra="forbid")

    int: tuple[builtins.int, builtins.int] | None = None  # builtins.: inside the class, `int` is this field
    float: tuple[builtins.float, builtins.float] | None = None
    choice: list[Any] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> "Param":
        kinds = [k for k in ("int", "float", "choice") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of int: [low, high], float: [low, high] or choice: [a, b, …]")
        bounds = self.int or self.float
        if bounds is not None and bounds[0] > bounds[1]:
            raise ValueError(f"low {bounds[0]} is above high {bounds[1]}")
        if self.log and (bounds is None or bounds[0] <= 0):
            raise ValueError("log: true needs a numeric range above 0")
        if self.choice is not None and not self.choice:
            raise ValueError("choice: give at least one value")
        return self

    def admits(self, value: Any) -> bool:
        if self.choice is not None:
            return value in self.choice
        low, high = self.int or self.float
        kind = builtins.int if self.int is not None else (builtins.int, builtins.float)
        return isinstance(value, kind) and not isinstance(value, bool) and low <= value <= high

    def values(self) -> list[Any]:
        """The values a check tries: each end of a range, every choice."""
        return list(self.choice) if self.choice is not None else list(self.int or self.float)


class ModelLimits(BaseModel):
    """Limits on the model itself, whatever device it ships to (a paper's parameter count, a MAC
    budget): a trial over one breaks it for every device, like a device budget."""

    model_config = ConfigDict(extra="forbid")

    max_params: builtins.int | None = Field(None, ge=1, description="parameters of the final model")
    max_macs: builtins.float | None = Field(None, gt=0, description="multiply-accumulates of one inference of the final model")


class TuneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space: dict[str, Param] = Field(min_length=1, description="recipe field path -> its range or choices")
    trials: int | None = Field(None, ge=1, description="trials the study should hold, finished or stopped by the pruner; a failed one is replaced (a resumed study runs only the rest)")
    time: str | None = Field(None, description="wall time for this invocation: 90s, 30m, 2h")
    seed: int = Field(0, description="the sampler's seed")
    objective: Literal["metric", "pareto-latency", "pareto-size"] = Field(
        "metric", description="metric: the lowest validation metric over the devices, within every budget; pareto-latency / pareto-size: "
        "that metric against each device's p50 latency or file size, a Pareto front (budgets still constrain)")
    sampler: Literal["tpe", "nsga2", "random"] | None = Field(None, description="default: tpe for metric, nsga2 for a Pareto objective")
    startup_trials: int = Field(10, ge=1, description="tpe: trials drawn at random before it models the space (Optuna's default 10); "
                                "fewer when a trial is long and the time short, or the whole study is spent at random")
    pruner: Literal["hyperband", "asha", "median", "none"] | None = Field(
        None, description="stops poor trials early on their validation figures where each training schedule ends "
        "(default: hyperband for metric; a Pareto objective cannot be pruned)")
    min_epochs: int = Field(1, ge=1, description="the pruner's first rung: epochs (over the whole recipe) before a trial can be stopped; "
                            "it is read at the first schedule end at or after them")
    reduction_factor: int = Field(3, ge=2, description="hyperband/asha: keep the best 1/N of the trials at each rung")
    limits: ModelLimits = Field(default_factory=ModelLimits, description="max_params / max_macs of the final model, for every device")
    first: list[dict[str, Any]] = Field(default_factory=list, description="trials to run first, field path -> value (e.g. the hand-written recipe's)")

    @model_validator(mode="after")
    def _a_budget(self) -> "TuneConfig":
        if self.trials is None and self.time is None:
            raise ValueError("give trials: N and/or time: 2h, or the study would never end")
        if self.time is not None:
            seconds(self.time)
        if self.pareto and self.pruner not in (None, "none"):
            raise ValueError(f"pruner: {self.pruner}: a Pareto objective cannot be pruned (Optuna prunes single-objective studies only); "
                             "remove pruner or use objective: metric")
        for i, values in enumerate(self.first):
            unknown = sorted(set(values) - set(self.space))
            if unknown:
                raise ValueError(f"first[{i}]: {', '.join(unknown)} not in the space; the space's paths: {', '.join(self.space)}")
            outside = [f"{path} = {value!r}" for path, value in values.items() if not self.space[path].admits(value)]
            if outside:
                raise ValueError(f"first[{i}]: {'; '.join(outside)} outside the space's range or choices")
        return self

    @property
    def pareto(self) -> bool:
        return self.objective != "metric"

    @property
    def sampler_name(self) -> str:
        return self.sampler or ("nsga2" if self.pareto else "tpe")

    @property
    def schedule_paths(self) -> list[str]:
        return schedule_paths(self.space)

    @property
    def pruner_name(self) -> str:
        return pruner_name(self.pruner, self.pareto, self.schedule_paths)

    @property
    def pruner_caveat(self) -> str | None:
        return pruner_caveat(self.pruner, self.schedule_paths)


def schedule_paths(space: dict) -> list[str]:
    """The searched paths that change a trial's schedule (see SCHEDULE_FIELDS)."""
    return [path for path in space if path.split(".")[-1] in SCHEDULE_FIELDS]


def pruner_name(asked: str | None, pareto: bool, schedule: list[str]) -> str:
    """The pruner asked for; by default Hyperband, except where it cannot compare like with like:
    a Pareto objective (Optuna prunes single-objective studies only) or a space that searches the
    schedule itself, where it would stop short schedules for being short (SCHEDULE_FIELDS)."""
    return asked or ("none" if pareto or schedule else "hyperband")


def pruner_caveat(asked: str | None, schedule: list[str]) -> str | None:
    """Why the pruner asked for may stop the wrong trials, or None."""
    if asked in (None, "none") or not schedule:
        return None
    return (f"tune.pruner: {asked} compares trials where their schedules end, but the space searches "
            f"{', '.join(schedule)}: trials reach a rung after unlike amounts of training (a short train judged "
            "against a long one, before either has pruned), so short schedules are stopped for being short. Fix the "
            "schedule in the recipe and search the rest, or set pruner: none (the default for such a space).")


def seconds(text: str) -> float:
    found = DURATION.match(text)
    if not found:
        raise ValueError(f"time {text!r}: write a number with s, m or h (90s, 30m, 2h)")
    return float(found.group(1)) * {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[found.group(2)]


def split_spec(raw: Any, source: str) -> tuple[dict, TuneConfig]:
    """(the recipe part, the tune section) of a spec file's contents."""
    if not isinstance(raw, dict) or not isinstance(raw.get("tune"), dict):
        raise RecipeError(f"{source}: a tune spec is a recipe with a `tune:` section (space, trials or time)")
    from pydantic import ValidationError

    from pipeline.core.config_errors import format_error_lines

    try:
        tune = TuneConfig.model_validate(raw["tune"])
    except ValidationError as e:
        raise RecipeError(f"{source}: invalid tune section:\n" + "\n".join(format_error_lines(e, TuneConfig, prefix="tune."))) from None
    recipe = {k: v for k, v in raw.items() if k != "tune"}
    return recipe, tune


HEADER = ("name", "seed", "data", "model", "devices", "metric", "accelerator", "deterministic")


def with_values(recipe: dict, values: dict[str, Any]) -> dict:
    """A copy of `recipe` with each field path set to its value (missing mappings on the way are made)."""
    out = copy.deepcopy(recipe)
    for path, value in values.items():
        parts = path.split(".")
        if parts[0] == "stages":
            if len(parts) < 4:
                raise UserError(f"tune.space: {path}: write stages.POSITION.NAME.FIELD, e.g. stages.1.prune.target.keep_macs")
            node, keys = _stage_at(out, path, parts[1], parts[2]), parts[3:]
        elif parts[0] in HEADER:
            node, keys = out, parts
        else:
            node, keys = _stage_named(out, path, parts[0]), parts[1:]
        if not keys:
            raise UserError(f"tune.space: {path}: name a field of it (e.g. {path}.epochs), not the whole stage")
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return out


def _config_of(entry: dict, name: str) -> dict:
    if not isinstance(entry.get(name), dict):
        entry[name] = {}
    return entry[name]


def _stage_at(recipe: dict, path: str, index: str, name: str) -> dict:
    stages = recipe.get("stages") or []
    entry = stages[int(index)] if index.isdigit() and int(index) < len(stages) else None
    if isinstance(entry, str) and entry == name:
        entry = stages[int(index)] = {name: {}}
    if not isinstance(entry, dict) or name not in entry:
        raise UserError(f"tune.space: {path}: the recipe has no stage {name!r} at position {index}; its stages: {', '.join(_names(stages))}")
    return _config_of(entry, name)


def _stage_named(recipe: dict, path: str, name: str) -> dict:
    stages = recipe.get("stages") or []
    for i, entry in enumerate(stages):
        if entry == name:
            entry = stages[i] = {name: {}}
        if isinstance(entry, dict) and name in entry:
            return _config_of(entry, name)
    raise UserError(f"tune.space: {path}: the recipe has no stage {name!r} (nor a header field of that name); its stages: {', '.join(_names(stages))}")


def _names(stages: list) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) and e else str(e) for e in stages]


def leaf_paths(recipe: dict) -> list[str]:
    """Every field path the recipe writes out (for suggestions)."""
    paths = []

    def walk(node, *keys: str):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, *keys, str(k))
        else:
            paths.append(".".join(keys))

    walk({k: v for k, v in recipe.items() if k != "stages"})
    for entry in recipe.get("stages") or []:
        if isinstance(entry, dict):
            walk(entry)
    return paths


def check_space(recipe: dict, tune: TuneConfig, parse) -> None:
    """Every path, at each of its values, must give a valid recipe (`parse` raises RecipeError if not);
    a refusal names the path and the recipe's closest paths."""
    for path, param in tune.space.items():
        for value in param.values():
            try:
                parse(with_values(recipe, {path: value}))
            except (RecipeError, UserError) as e:
                near = difflib.get_close_matches(path, leaf_paths(recipe), n=3, cutoff=0.5)
                hint = f" (the recipe's closest paths: {', '.join(near)})" if near else ""
                raise UserError(f"tune.space.{path} = {value!r} does not give a valid recipe{hint}:\n{e}") from None
    for i, values in enumerate(tune.first):
        try:
            parse(with_values(recipe, values))
        except (RecipeError, UserError) as e:
            raise UserError(f"tune.first[{i}] does not give a valid recipe:\n{e}") from None
