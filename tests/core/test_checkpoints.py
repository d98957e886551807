import torch
import torch_pruning as tp

from pipeline.core.checkpoints import load_model, save_model
from pipeline.models import ModelConfig, build_model


def test_pruned_model_round_trips_without_pickled_code(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="mobilenetv2"), 1, 10).eval()
    example = torch.randn(2, 1, 28, 28)
    pruner = tp.pruner.MetaPruner(model, example, tp.importance.GroupMagnitudeImportance(), pruning_ratio=0.4, ignored_layers=[model.fc])
    pruner.step()
    path = tmp_path / "model.pt"
    save_model(model, path)

    raw = torch.load(path, weights_only=True)  # must not need any class to unpickle
    assert set(raw) == {"tensors", "shapes"}
    fresh = build_model(ModelConfig(name="mobilenetv2"), 1, 10)
    restored = load_model(fresh, path).eval()
    assert sum(p.numel() for p in restored.parameters()) == sum(p.numel() for p in model.parameters())
    assert torch.allclose(restored(example), model(example), atol=1e-6)
    depthwise = [m for m in restored.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert all(m.groups == m.in_channels == m.out_channels for m in depthwise)


class Planted:
    """Unpickling this runs code: it writes the marker file. A weights-only loader never gets that far."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


def _touch(path):
    with open(path, "w") as f:
        f.write("code ran")


def test_a_checkpoint_that_carries_code_is_refused_and_the_code_never_runs(tmp_path, tiny_recipe, write_recipe):
    import pytest
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.core.errors import CheckpointError

    marker = tmp_path / "code-ran"
    evil = tmp_path / "model.pt"
    torch.save({"tensors": Planted(marker), "shapes": {}}, evil)
    with pytest.raises(CheckpointError, match="holds more than tensors and is refused"):
        load_model(build_model(ModelConfig(name="tiny_cnn"), 1, 10), evil)
    assert not marker.exists(), "the run folder's loader unpickled code"

    tiny_recipe["model"]["checkpoint"] = str(evil)
    result = CliRunner().invoke(main, ["run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "cannot be loaded with weights_only=True" in result.output
    assert not marker.exists(), "model.checkpoint's loader unpickled code"
