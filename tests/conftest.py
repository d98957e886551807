"""Shared fixtures: a tiny recipe (small CNN, a few hundred samples) that runs every stage in seconds."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from tests.mutation_order import pytest_collection_modifyitems  # noqa: F401  (a hook: fastest tests first under mutation testing)

TINY_RECIPE = {
    "name": "tiny",
    "seed": 0,
    # benchmarks/cuda_check.sh sets cuda, to run every recipe test's training on a GPU
    "accelerator": os.environ.get("COMPRESS_TEST_ACCELERATOR", "cpu"),
    "data": {"source": "embedded", "train_subset": 600, "test_subset": 300, "batch_size": 64},
    "model": {"name": "tiny_cnn", "kwargs": {"widths": [8, 8, 16, 16]}},
    "stages": [
        {"train": {"epochs": 2, "lr": 0.01}},
        {"prune": {"target": {"keep_macs": 0.6}, "steps": 2, "finetune": {"epochs": 1}}},
        {"export": {}},
        {"quantize": {"calibration_samples": 64, "parity_samples": 300, "min_top1_agreement": 0.8}},
        {"validate": {"runs": 20, "warmup": 2}},
    ],
    "devices": ["host", "raspberry-pi-4"],
}


@pytest.fixture
def tiny_recipe() -> dict:
    return copy.deepcopy(TINY_RECIPE)


@pytest.fixture
def write_recipe(tmp_path: Path):
    def write(recipe: dict, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        return path

    return write


@pytest.fixture
def lenient_device(tmp_path: Path) -> Path:
    """A user profile (given by path) whose budgets a barely trained tiny model meets."""
    path = tmp_path / "lenient.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "lenient",
                "description": "test board",
                "cpu": "x86-64",
                "cores": 1,
                "threads": 1,
                "int8_dot_product": True,
                "memory_mb": 512,
                "storage_mb": 1024,
                "latency_factor": 2.0,
                "latency_factor_source": "nominal",
                "latency_factor_note": "made up for the test",
                "sources": ["tests/conftest.py"],
                "budgets": {
                    "max_size_kb": 4096, "max_size_gzip_kb": 4096, "max_latency_p90_ms": 1000, "min_accuracy": 0.2,
                    "max_accuracy_drop": 50, "max_peak_memory_mb": 4096,
                },
            }
        )
    )
    return path


def finished_run_recipe() -> dict:
    """train, export, quantize, validate on the host and the Pi 4: the recipe of `finished_run`."""
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["stages"] = [
        {"train": {"epochs": 2, "lr": 0.01}},
        {"export": {}},
        {"quantize": {"calibration_samples": 64, "min_top1_agreement": 0.5}},
        {"validate": {"runs": 20, "warmup": 2}},
    ]
    return recipe


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny run, shared by the tests that read run folders (bundle, report, gate); tests
    that change it work on a copy."""
    from pipeline.recipe import parse_recipe
    from pipeline.runner import run_recipe

    out = tmp_path_factory.mktemp("run") / "tiny"
    run_recipe(parse_recipe(finished_run_recipe()), out, quiet=True)
    return out


def mounted_tmpfs(folder: Path, options: str, what: str):
    """A tmpfs of its own at `folder` (root can mount one; CI runs as root), unmounted afterwards; the
    test is skipped where mounting is refused."""
    import subprocess

    folder.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount {what} here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only tmpfs: the one folder root cannot write."""
    yield from mounted_tmpfs(tmp_path / "read-only", "ro,size=1M", "a read-only tmpfs")


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs: a disk that fills."""
    yield from mounted_tmpfs(tmp_path / "small", "size=3M", "a small tmpfs")
