import pytest
import torch

from pipeline.data import DataConfig, load_data
from pipeline.models import ModelConfig, build_model
from pipeline.training.evaluation import accuracy, size_figures
from pipeline.training.loop import TrainConfig, fit


def small_data():
    return load_data(DataConfig(train_subset=800, test_subset=200, batch_size=64), seed=0)


def trained(seed: int):
    data = small_data()
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    history = fit(model, data, TrainConfig(epochs=3, lr=0.01), device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed))
    return model, data, history


def test_fit_learns_well_above_chance():
    model, data, history = trained(0)
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    assert all(h["train_seconds"] > 0 and h["val_seconds"] >= 0 for h in history), "each epoch says where its time went"
    assert accuracy(model, data.test) > 0.35  # chance is 0.10; 0.56 measured, a margin for other CPUs' kernels


def test_fit_is_deterministic_for_a_seed():
    a, _, ha = trained(3)
    b, _, hb = trained(3)
    clocks = {"train_seconds", "val_seconds"}
    assert [{k: v for k, v in h.items() if k not in clocks} for h in ha] == [{k: v for k, v in h.items() if k not in clocks} for h in hb]
    assert torch.equal(a.fc.weight, b.fc.weight)


def test_early_stopping_stops_and_keeps_best():
    data = small_data()
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    cfg = TrainConfig(epochs=30, lr=1e-7, schedule="constant", early_stopping_patience=1)
    history = fit(model, data, cfg, device=torch.device("cpu"), generator=torch.Generator().manual_seed(0))
    assert len(history) < 30


def test_size_figures_count_params_and_macs():
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    figures = size_figures(model, (1, 28, 28))
    assert figures["params"] == sum(p.numel() for p in model.parameters()) == 15554
    assert 1.5e6 < figures["macs"] < 1.8e6
    assert figures["size_bytes"] >= 4 * figures["params"]


def test_sync_batchnorm_on_cpus_is_refused_before_training():
    from pipeline.core.errors import StageError
    from pipeline.training.loop import _parallel, _Step

    step = _Step(build_model(ModelConfig(name="tiny_cnn"), 1, 10), lambda batch: {})
    with pytest.raises(StageError, match="sync_batchnorm: true needs CUDA"):
        with _parallel(step, TrainConfig(sync_batchnorm=True), torch.device("cpu"), ranks=2):
            pass


def test_restoring_batchnorm_keeps_its_class_weights_and_statistics():
    from pipeline.training.loop import _restore_batchnorm

    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    bn = model.features[0][1]
    bn.running_mean.fill_(0.5)
    originals = {name: type(m) for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(model.features[0][1], torch.nn.SyncBatchNorm)
    _restore_batchnorm(model, originals)
    restored = model.features[0][1]
    assert type(restored) is torch.nn.BatchNorm2d and torch.all(restored.running_mean == 0.5)


def test_each_epoch_and_early_stopping_read_the_recipes_metric():
    """A metric other than top-1 decides the validation figure of every epoch, and so which epoch
    early stopping keeps: here it prefers the first epoch, whatever top-1 says."""
    data = small_data()
    scores = iter([0.9, 0.1, 0.2, 0.3])
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="tiny_cnn"), 1, 10)
    first_epoch = {}

    def declining(logits, labels):
        if not first_epoch:
            first_epoch.update({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    cfg = TrainConfig(epochs=4, lr=0.01, early_stopping_patience=2)
    history = fit(model, data, cfg, device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), metric=declining)
    assert [h["val_accuracy"] for h in history] == [0.9, 0.1, 0.2]
    assert all(torch.equal(v, first_epoch[k]) for k, v in model.state_dict().items()), "the epoch the metric preferred is kept"


def test_a_stage_trains_with_the_recipes_metric(tmp_path):
    from pipeline.training.session import train
    from tests.stages.helpers import make_context

    ctx = make_context(tmp_path, train=200, test=100)
    ctx.metric = lambda logits, labels: 0.375
    trained = train(build_model(ModelConfig(name="tiny_cnn"), 1, 10), TrainConfig(epochs=1, lr=0.01), ctx)
    assert [h["val_accuracy"] for h in trained.history] == [0.375]
