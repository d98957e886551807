"""A model that the pipeline cannot use is refused before the first stage, as one paragraph (exit 1)."""

import pytest
from click.testing import CliRunner

from pipeline.cli import main

CASES = {
    "raises": "model.factory tests.models.bad_models:raises failed to build with kwargs {}: RuntimeError: weights server unreachable",
    "returns_tuple": "forward returns a tuple of 2; the pipeline needs one logits tensor [N, 10]",
    "returns_dict": "forward returns a dict with keys ['logits', 'aux']",
    "five_classes": "forward maps [2, 1, 28, 28] to [2, 5], but the data has 10 classes",
    "rgb_only": "Its first conv `features.0.0` takes 3 channel(s) but the data's images have 1",
    "not_a_tensor": "forward returns str, not a logits tensor [N, 10]",
}


@pytest.mark.parametrize("factory", sorted(CASES))
def test_broken_models_are_refused_before_training(factory, tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["model"] = {"factory": f"tests.models.bad_models:{factory}"}
    result = CliRunner().invoke(main, ["run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert CASES[factory] in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "01-train").exists(), "refused before the first stage"


def test_zoo_model_with_bad_kwargs_is_one_paragraph(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["model"] = {"name": "tiny_cnn", "kwargs": {"depth": 3}}
    result = CliRunner().invoke(main, ["run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "model 'tiny_cnn' failed to build with kwargs {'depth': 3}: TypeError" in result.output


def test_a_conforming_factory_passes_the_check():
    import torch

    from pipeline.models.contract import check_model
    from tests.models.bad_models import fine

    check_model(fine(), torch.zeros(2, 1, 28, 28), 10, "fine")
