"""A recipe's `data:` section: where the data comes from, how it is split and normalised.

The sources are registered before this module runs: importing it imports the package first, whose
face imports every source.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.data.registry import SOURCES


class DataConfig(BaseModel):
    """Where the data comes from and how it is split."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("embedded", description=f"a registered data source: {' | '.join(SOURCES.names())}")
    path: str | None = Field(None, description="directory (fashion-mnist) or file (npz); default: COMPRESS_DATA, then the system location")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of the training split held out for validation")
    train_on_validation: bool = Field(
        False, description="also train on the validation split: for a final run once every choice (epochs, learning rates, "
        "the recipe itself) was made on validation with this off. `validation_kept` of its samples stay out of training",
    )
    validation_kept: int = Field(
        1000, ge=0, description="train_on_validation: validation samples (at most a fifth of the split) kept out of training, so "
        "what later stages choose on validation (INT8 accuracy budgets, FP32 fallbacks, early-exit thresholds) is judged on "
        "unseen images; they become the validation split. 0 trains on all of it, and validation figures are then on seen data",
    )
    train_subset: int | None = Field(None, ge=10, description="use only this many training samples (tests, quick trials)")
    test_subset: int | None = Field(None, ge=10, description="use only this many test samples")
    batch_size: int = Field(128, ge=1)
    test_fraction: float = Field(0.2, gt=0, lt=1, description="image_folder with class folders directly under path: share of each class held out for test")
    factory: str | None = Field(None, description='dataset source: "package.module:function" returning {train, test, val (optional), class_names}')
    factory_kwargs: dict = Field(default_factory=dict, description="dataset source: keyword arguments for the factory")
    input_size: int | list[int] | None = Field(
        None, description="image_folder: resize the shorter side to this, then centre-crop to it (or to [height, width]); "
        "needed when the images' sizes differ"
    )
    channels: Literal[1, 3] | None = Field(None, description="image_folder: 1 (grey) or 3 (RGB); default: the first image's")
    skip_unreadable: bool = Field(False, description="image_folder: skip (and count) images that cannot be decoded instead of stopping")
    mean: list[float] | None = Field(None, description="per-channel mean to normalise with; default: measured on the training split")
    std: list[float] | None = Field(None, description="per-channel std to normalise with; default: measured on the training split")
    workers: int | None = Field(None, ge=0, description="DataLoader workers for streamed sources; default: up to 4, one per core")

    @model_validator(mode="after")
    def _stats_together(self) -> "DataConfig":
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together (one value per channel), or neither")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be positive (got {self.std})")
        return self

    @field_validator("input_size")
    @classmethod
    def _input_size(cls, size):
        sizes = [size] if isinstance(size, int) else size
        if sizes is not None and (len(sizes) not in (1, 2) or any(isinstance(s, bool) or s < 1 for s in sizes)):
            raise ValueError(f"input_size is one size in pixels (e.g. 32) or [height, width], each at least 1 (got {size!r})")
        return size[0] if isinstance(size, list) and len(size) == 1 else size

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; allowed: {', '.join(SOURCES.names())}")
        return source
