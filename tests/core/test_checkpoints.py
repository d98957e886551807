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
