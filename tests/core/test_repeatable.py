"""Deterministic kernels are asked for on CUDA only, and a recipe can turn them off (checked for real
on a GPU by benchmarks/cuda_check.sh: the crash-safety tests compare file hashes across runs there)."""

import pytest
import torch

from pipeline.core.repeatable import make_repeatable


@pytest.fixture(autouse=True)
def restore_torch_flags():
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[1:]


def test_cuda_gets_deterministic_kernels_unless_the_recipe_says_no():
    make_repeatable(torch.device("cuda", 0), True)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    make_repeatable(torch.device("cuda", 0), False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark


def test_the_cpu_is_left_as_it_is():
    make_repeatable(torch.device("cpu"), True)
    assert not torch.are_deterministic_algorithms_enabled()


def test_recipes_ask_for_repeatable_kernels_by_default(tiny_recipe):
    from pipeline.recipe import RecipeHeader

    assert RecipeHeader.model_validate({k: v for k, v in tiny_recipe.items()}).deterministic
