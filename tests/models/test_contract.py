"""A model that the pipeline cannot use is refused before the first stage, as one paragraph (exit 1)."""

import pytest
import torch
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


def refusal(model, sample, classes=10) -> str:
    from pipeline.core.errors import UserError
    from pipeline.models.contract import check_model

    with pytest.raises(UserError) as caught:
        check_model(model, sample, classes, "model.factory f")
    return str(caught.value)


class Fails(torch.nn.Module):
    def __init__(self, message):
        super().__init__()
        self.message, self.linear = message, torch.nn.Linear(4, 10)

    def forward(self, x):
        raise ValueError(self.message)


def test_the_contract_says_exactly_what_the_model_did():
    from tests.models import bad_models

    sample = torch.zeros(2, 1, 28, 28)
    assert refusal(Fails("bad input\nsecond line"), sample) == (
        "model.factory f: forward failed on a batch of the data's images, shape [2, 1, 28, 28]: ValueError: bad input (--debug shows where)"
    )
    assert refusal(Fails(""), sample) == (
        "model.factory f: forward failed on a batch of the data's images, shape [2, 1, 28, 28]: ValueError (--debug shows where)"
    )
    assert refusal(bad_models.rgb_only(), sample).endswith(
        ". Its first conv `features.0.0` takes 3 channel(s) but the data's images have 1: build the model for 1-channel input (--debug shows where)"
    )
    assert refusal(bad_models.returns_tuple(), sample) == (
        "model.factory f: forward returns a tuple of 2; the pipeline needs one logits tensor [N, 10]. Wrap the model so forward returns the "
        "logits alone (e.g. `return self.net(x)[0]` or `return self.net(x)['logits']`); auxiliary outputs belong in an aux_heads stage"
    )
    assert refusal(bad_models.five_classes(), torch.zeros(3, 1, 28, 28)) == (
        "model.factory f: forward maps [3, 1, 28, 28] to [3, 5], but the data has 10 classes: the output must be [3, 10] "
        "(one logit per class; set the model's class count to 10)"
    )


def test_a_model_left_in_training_mode_is_returned_to_it():
    from pipeline.models.contract import check_model
    from tests.models.bad_models import fine

    model = fine().train()
    check_model(model, torch.zeros(2, 1, 28, 28), 10, "fine")
    assert model.training
    check_model(model.eval(), torch.zeros(2, 1, 28, 28), 10, "fine")
    assert not model.training
