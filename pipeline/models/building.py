"""A model from its config: a zoo model given the data's channel and class counts, or a user's
factory given its kwargs; whatever either raises is one paragraph naming the model and its kwargs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from pipeline.core.errors import UserError, what_failed
from pipeline.core.user_code import load_function
from pipeline.models.config import ModelConfig
from pipeline.models.registry import ZOO
from pipeline.models.weights import load_weights


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
