"""Models: a small zoo for small inputs, or any user model through `factory: "package.module:function"`."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from pipeline.core.checkpoints import load_model, refusal
from pipeline.core.errors import CheckpointError, UserError, what_failed
from pipeline.core.user_code import load_function
from pipeline.models import zoo  # noqa: F401  (register the zoo before ModelConfig lists it)
from pipeline.models.registry import ZOO


class ModelConfig(BaseModel):
    """Which architecture to build, and optionally which weights to start from."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description=f"a zoo model: {' | '.join(ZOO.names())}")
    factory: str | None = Field(None, description='a user model: "package.module:function" returning an nn.Module')
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the zoo model or factory")
    checkpoint: str | None = Field(None, description="a state_dict file to load (weights_only=True)")

    @field_validator("name")
    @classmethod
    def _known_zoo_model(cls, name: str | None) -> str | None:
        if name is not None and name not in ZOO:
            raise ValueError(f"unknown zoo model {name!r}; known: {', '.join(ZOO.names())} (or give factory: \"package.module:function\")")
        return name

    def describe(self) -> str:
        return f"model {self.name!r}" if self.name is not None else f"model.factory {self.factory}"

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if (self.name is None) == (self.factory is None):
            raise ValueError("give exactly one of `name` (a zoo model) or `factory` (\"package.module:function\")")
        return self


def build_model(cfg: ModelConfig, in_channels: int, num_classes: int, load_checkpoint: bool = True) -> nn.Module:
    """Build the architecture; zoo models get the data's channel and class counts, user factories only their kwargs."""
    if cfg.name is not None:
        model = _built(f"model {cfg.name!r}", lambda: ZOO.get(cfg.name)(in_channels=in_channels, num_classes=num_classes, **cfg.kwargs), cfg.kwargs)
    else:
        model = _call_factory(cfg.factory, cfg.kwargs)
    if cfg.checkpoint and load_checkpoint:
        load_weights(model, Path(cfg.checkpoint))
    return model


def _call_factory(spec: str, kwargs: dict[str, Any]) -> nn.Module:
    func = load_function(spec, "model.factory")
    model = _built(f"model.factory {spec}", lambda: func(**kwargs), kwargs)
    if not isinstance(model, nn.Module):
        raise UserError(f"model.factory: {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _built(what: str, build: Callable[[], Any], kwargs: dict[str, Any]) -> Any:
    """Whatever a model's constructor raises is the user's model or kwargs at fault: one paragraph."""
    try:
        return build()
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  user code may raise anything
        raise UserError(f"{what} failed to build with kwargs {kwargs}: {what_failed(e)} (--debug shows where)") from e


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a plain state_dict (or one under 'state_dict'/'model') strictly, explaining any mismatch.

    A `model.pt` from a run folder (possibly pruned) loads too: it carries its layers' shapes.
    """
    if not path.is_file():
        raise CheckpointError(f"model.checkpoint: {path} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"model.checkpoint: {refusal(path, e)}") from None
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"model.checkpoint: {path} cannot be loaded with weights_only=True: {str(e).splitlines()[0]}") from None
    if isinstance(saved, dict) and set(saved) == {"tensors", "shapes"}:
        load_model(model, path)
        return
    if isinstance(saved, dict) and ("state_dict" in saved or "model" in saved):
        saved = saved.get("state_dict", saved.get("model"))
    if not isinstance(saved, dict):
        raise CheckpointError(f"model.checkpoint: {path} holds a {type(saved).__name__}, not a state_dict")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    mismatched = [
        f"{k} {tuple(saved[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in saved and hasattr(saved[k], "shape") and saved[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
        if mismatched:
            parts.append(f"shape mismatches: {'; '.join(mismatched[:5])}{' …' if len(mismatched) > 5 else ''}")
        raise CheckpointError(
            f"model.checkpoint: {path} does not match the model ({'; '.join(parts)}). "
            "Check model.name/model.kwargs against the architecture the checkpoint was trained with."
        )
    model.load_state_dict(saved)

