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
    with pytest.raises(CheckpointError, match="holds more than tensors .* and is refused"):
        load_model(build_model(ModelConfig(name="tiny_cnn"), 1, 10), evil)
    assert not marker.exists(), "the run folder's loader unpickled code"

    tiny_recipe["model"]["checkpoint"] = str(evil)
    result = CliRunner().invoke(main, ["run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and f"model.checkpoint: {evil} holds more than tensors" in result.output
    assert not marker.exists(), "model.checkpoint's loader unpickled code"


def test_refusals_name_what_the_checkpoint_carries_or_that_it_is_damaged(tmp_path):
    import pytest

    from pipeline.core.errors import CheckpointError

    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    evil = tmp_path / "evil.pt"
    torch.save({"tensors": Planted(tmp_path / "marker"), "shapes": {}}, evil)
    with pytest.raises(CheckpointError) as caught:
        load_model(model, evil)
    assert str(caught.value) == (
        f"{evil} holds more than tensors (it names tests.core.test_checkpoints._touch) and is refused: "
        "only tensors are loaded (weights_only=True), so code in a checkpoint never runs"
    )
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"garbage")
    with pytest.raises(CheckpointError) as caught:
        load_model(model, damaged)
    assert str(caught.value).startswith(f"{damaged} is not a checkpoint written by torch.save (damaged or another format): ")
    assert str(caught.value).endswith("torch.load.html.")


def test_a_checkpoint_for_another_architecture_names_the_module_or_tensor(tmp_path):
    import pytest

    from pipeline.core.errors import CheckpointError

    path = tmp_path / "model.pt"
    torch.save({"tensors": {}, "shapes": {"extra": {"in_channels": 3}}}, path)
    with pytest.raises(CheckpointError) as caught:
        load_model(build_model(ModelConfig(name="tiny_cnn"), 1, 10), path)
    assert str(caught.value) == f"{path}: module 'extra' is not in the model built from the recipe"
    torch.save({"tensors": {"extra.weight": torch.zeros(1)}, "shapes": {}}, path)
    with pytest.raises(CheckpointError) as caught:
        load_model(build_model(ModelConfig(name="tiny_cnn"), 1, 10), path)
    assert str(caught.value) == f"{path}: tensor 'extra.weight' has no module in the model built from the recipe"


def test_frozen_parameters_stay_frozen_and_buffers_are_resized(tmp_path):
    source = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    path = tmp_path / "model.pt"
    save_model(source, path)
    target = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.BatchNorm2d(8))
    target[0].weight.requires_grad_(False)
    load_model(target, path)
    assert not target[0].weight.requires_grad and target[0].bias.requires_grad
    assert target[1].running_mean.shape == (4,)


def test_a_width_model_is_the_full_model_at_width_one_else_its_own_checkpoint_on_a_copy(tmp_path):
    from pipeline.core.checkpoints import width_model

    full = torch.nn.Sequential(torch.nn.Linear(4, 8)).train()
    assert width_model(full, [], 1, None) is full and not full.training
    save_model(torch.nn.Sequential(torch.nn.Linear(4, 2)), tmp_path / "w25.pt")
    save_model(torch.nn.Sequential(torch.nn.Linear(4, 4)), tmp_path / "w50.pt")
    widths = [{"width": 0.25, "checkpoint": "w25.pt"}, {"width": 0.5, "checkpoint": "w50.pt"}]
    half = width_model(full.train(), widths, 0.5, lambda ref: tmp_path / ref)
    assert half[0].out_features == 4 and half[0].weight.shape == (4, 4) and not half.training
    assert full[0].out_features == 8 and full[0].weight.shape == (8, 4), "the full model is left as it was"


def test_a_checkpoint_written_on_a_gpu_machine_loads_on_the_cpu(tmp_path, monkeypatch):
    """Run folders move between machines (a GPU box trains, a CPU runner gates): tensors are mapped to
    the CPU on load. Saved here with their storage tagged as CUDA, as torch.save does on a GPU."""
    import torch.serialization

    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    path = tmp_path / "model.pt"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_model(model, path)
    restored = load_model(torch.nn.Sequential(torch.nn.Linear(4, 2)), path)
    assert torch.equal(restored[0].weight, model[0].weight)


class Held(torch.nn.Module):
    """A module holding one buffer, to vary its name, shape and dtype alone."""

    def __init__(self, name: str, tensor: torch.Tensor):
        super().__init__()
        self.register_buffer(name, tensor)


def test_the_weights_digest_changes_with_any_value_name_shape_or_dtype():
    from pipeline.core.checkpoints import weights_digest

    base = weights_digest(Held("a", torch.zeros(2, 3)))
    assert weights_digest(Held("a", torch.zeros(2, 3))) == base, "equal weights, equal digests"
    changed = torch.zeros(2, 3)
    changed[1, 2] = 1e-6
    for other in (Held("a", changed), Held("b", torch.zeros(2, 3)), Held("a", torch.zeros(3, 2)), Held("a", torch.zeros(2, 3, dtype=torch.int32))):
        assert weights_digest(other) != base
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    before = weights_digest(model)
    model[1].running_mean.add_(1)
    assert weights_digest(model) != before, "buffers count as weights"
