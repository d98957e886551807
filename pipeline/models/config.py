"""A recipe's `model:` section: a zoo model or a user factory, and optionally the weights to start from."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.models import detector, zoo  # noqa: F401  (register the zoo before ModelConfig lists it)
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
