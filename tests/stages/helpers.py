"""Build a StageContext on a tiny data subset so one stage can be tested alone."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from pipeline.core.state import ModelState
from pipeline.data import DataConfig, load_data
from pipeline.deploy.profiles import load_profile
from pipeline.models import ModelConfig, build_model
from pipeline.stages.base import StageContext
from pipeline.training.loop import TrainConfig, fit

# benchmarks/cuda_check.sh sets cuda: every stage test then trains on the GPU
DEVICE = torch.device(os.environ.get("COMPRESS_TEST_ACCELERATOR", "cpu"))
RGB = {"source": "dataset", "factory": "tests.data.user_datasets:three_classes", "workers": 0}  # 3x12x12, 3 classes, read lazily
# validation as usual, test = the validation images with wrong labels: a choice that reads test shows
MISLABELLED_TEST = {"source": "dataset", "factory": "tests.data.user_datasets:mislabelled_test", "workers": 0}


def make_context(run_dir: Path, folder: str = "01-stage", devices=("host",), train: int = 600, test: int = 300, data: dict | None = None) -> StageContext:
    """`data`: a DataConfig dict instead of the embedded grey images (e.g. `RGB`)."""
    stage_dir = run_dir / folder
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(
        data=load_data(DataConfig(**{**(data or {}), "train_subset": train, "test_subset": test, "batch_size": 64}), seed=0),
        device=DEVICE,
        run_dir=run_dir,
        stage_dir=stage_dir,
        seed=0,
        profiles=[load_profile(d) for d in devices],
        recipe_meta={"name": "test", "sha256": "0" * 64},
        log=logging.getLogger("compress.test"),
        quiet=True,
    )


def trained_state(ctx: StageContext, epochs: int = 2, **kwargs) -> ModelState:
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny_cnn", kwargs=kwargs), ctx.data.input_shape[0], ctx.data.num_classes)
    fit(model, ctx.data, TrainConfig(epochs=epochs, lr=0.01), device=ctx.device, generator=torch.Generator().manual_seed(0))
    return ModelState(model=model.cpu(), reference={"accuracy": 0.5})
