import re

import pytest
import torch

from pipeline.core.errors import StageError
from pipeline.stages import prune
from pipeline.stages.prune import PruneConfig, run
from pipeline.models.heads import headed
from pipeline.training.evaluation import size_figures
from pipeline.training.loop import TrainConfig
from tests.stages.helpers import make_context, trained_state


def conv_widths(model):
    return [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_remove_channels_physically_removes_them(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=1)
    before = conv_widths(state.model)
    cfg = PruneConfig(target={"remove_channels": 0.5}, steps=2, finetune=TrainConfig(epochs=0))
    state = run(cfg, state, ctx)
    after = conv_widths(state.model)
    assert after == [w // 2 for w in before]
    assert state.model.fc.out_features == 10, "the classifier is never pruned"
    assert state.model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert [r["round"] for r in ctx.metrics["rounds"]] == [1, 2]
    assert state.compressed


def test_keep_macs_reaches_target_in_rounds(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=1)
    start = size_figures(state.model, (1, 28, 28))["macs"]
    cfg = PruneConfig(target={"keep_macs": 0.5}, steps=2, finetune=TrainConfig(epochs=1))
    state = run(cfg, state, ctx)
    macs = [r["macs"] / start for r in ctx.metrics["rounds"]]
    assert 0.73 <= macs[0] <= 0.75 and 0.485 <= macs[1] <= 0.5, "each round lands on its goal (0.75, 0.5), not one whole step past it"
    assert ctx.metrics["target_reached"] and ctx.metrics["macs"] == ctx.metrics["rounds"][1]["macs"]
    assert ctx.metrics["accuracy"] > 0.2


def test_max_macs_prunes_to_the_number_given(tmp_path):
    """A budget written as the number it is: the model ends at or under it, and not far under."""
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0)
    start = size_figures(state.model, (1, 28, 28))["macs"]
    budget = int(start * 0.4)
    cfg = PruneConfig(target={"max_macs": budget}, steps=2, finetune=TrainConfig(epochs=0))
    run(cfg, state, ctx)
    first, last = (r["macs"] for r in ctx.metrics["rounds"])
    assert 0.93 * budget <= last <= budget, "at or under the budget, and within one fine increment of it"
    assert 0.68 * start <= first <= 0.7 * start, "round 1 aims half way: 0.7 of the start"
    assert ctx.metrics["target_reached"]


def test_max_params_already_met_removes_nothing(tmp_path, caplog):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0)
    before = conv_widths(state.model)
    params = size_figures(state.model, (1, 28, 28))["params"]
    cfg = PruneConfig(target={"max_params": params}, steps=1, finetune=TrainConfig(epochs=0))
    with caplog.at_level("INFO", logger="compress"):
        state = run(cfg, state, ctx)
    assert conv_widths(state.model) == before and ctx.metrics["target_reached"]
    assert f"already within max_params {params:,}" in caplog.text


def test_a_budget_out_of_reach_is_not_reported_as_reached(tmp_path, caplog):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0)
    cfg = PruneConfig(target={"max_macs": 1000}, steps=1, max_layer_ratio=0.5, finetune=TrainConfig(epochs=0))
    run(cfg, state, ctx)
    assert not ctx.metrics["target_reached"] and ctx.metrics["rounds"][-1]["macs"] > 1000
    assert "could not reach max_macs=1,000 within max_layer_ratio=0.5" in caplog.text


@pytest.mark.parametrize("importance", ["taylor", "bn_scale", "lamp"])
def test_other_importance_criteria_prune(tmp_path, importance):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=1)
    cfg = PruneConfig(target={"keep_params": 0.6}, steps=1, importance=importance, finetune=TrainConfig(epochs=0))
    state = run(cfg, state, ctx)
    assert ctx.metrics["params"] <= 0.6 * ctx.metrics["before"]["params"]


def test_round_to_keeps_multiples(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0, widths=[16, 16, 32, 32])
    cfg = PruneConfig(target={"remove_channels": 0.3}, steps=1, round_to=4, finetune=TrainConfig(epochs=0))
    state = run(cfg, state, ctx)
    assert all(w % 4 == 0 for w in conv_widths(state.model))


def test_unknown_ignored_module_lists_choices(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0)
    cfg = PruneConfig(target={"remove_channels": 0.3}, ignore=["features.9"], finetune=TrainConfig(epochs=0))
    with pytest.raises(StageError, match="no module named features.9; conv/linear modules: features.0.0"):
        run(cfg, state, ctx)


@pytest.mark.parametrize("importance", ["magnitude", "taylor"])
def test_heads_are_pruned_with_the_backbone_and_keep_working(tmp_path, importance):
    from pipeline.stages.aux_heads import AuxHeadsConfig
    from pipeline.stages.aux_heads import run as attach

    ctx = make_context(tmp_path)
    state = attach(AuxHeadsConfig(kind="bottleneck", train=TrainConfig(epochs=1)), trained_state(ctx, epochs=1), ctx)
    cfg = PruneConfig(target={"remove_channels": 0.5}, importance=importance, steps=1, finetune=TrainConfig(epochs=1))
    state = run(cfg, state, ctx)
    modules = dict(state.model.named_modules())
    for spec in state.head_specs:
        attach_width = modules[spec["attach"]][0].out_channels
        assert state.heads[spec["name"]].body[0][0].in_channels == attach_width
    assert state.heads["head1"].fc.out_features == 10
    assert set(ctx.metrics["heads_accuracy"]) == {"head1", "head2", "final"}
    with headed(state) as view:
        view(torch.zeros(2, 1, 28, 28))
        assert all(v.shape == (2, 10) for v in view.head_logits.values())


def test_distillation_recovery_trains_on_the_teachers_term(tmp_path, monkeypatch):
    import pipeline.stages.prune as prune_module

    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=2)
    histories = []
    original = prune_module.train
    monkeypatch.setattr(prune_module, "train", lambda *a, **kw: histories.append(original(*a, **kw).history))
    cfg = PruneConfig(target={"keep_macs": 0.5}, steps=2, recovery="distill", finetune=TrainConfig(epochs=1))
    run(cfg, state, ctx)
    assert len(histories) == 2
    assert all(set(h[-1]["terms"]) == {"ce", "kd"} and h[-1]["terms"]["kd"] > 0 for h in histories)
    assert ctx.metrics["recovery"] == "distill" and ctx.metrics["target_reached"]


def test_geometric_schedule_removes_the_same_fraction_each_round(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=0)
    start = size_figures(state.model, (1, 28, 28))["macs"]
    cfg = PruneConfig(target={"keep_macs": 0.36}, steps=2, schedule="geometric", finetune=TrainConfig(epochs=0))
    run(cfg, state, ctx)
    first, second = (r["macs"] / start for r in ctx.metrics["rounds"])
    assert 0.5 <= first <= 0.6, "round 1 aims at 0.36 ** 0.5 = 0.6 of the MACs, not the linear 0.68"
    assert second <= 0.36 and second / first > 0.5


def toy_device(monkeypatch, ms_per_mmac: float = 1.0):
    """A toy latency model: latency proportional to MACs, size proportional to params."""
    from pipeline.pruning import targets
    from pipeline.training.evaluation import size_figures

    def measure(model, shape, runs=100):
        figures = size_figures(model, shape)
        return {"size_kb": figures["params"] * 4 / 1024, "host_p90_ms": figures["macs"] / 1e6 * ms_per_mmac}

    monkeypatch.setattr(targets, "measure_exported", measure)


def test_device_latency_target_stops_at_the_first_step_within_budget(tmp_path, monkeypatch):
    toy_device(monkeypatch)
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=1)
    budget = 0.7 * size_figures(state.model, ctx.data.input_shape)["macs"] / 1e6  # toy ms = M MACs on the host (factor 1)
    cfg = prune.PruneConfig(target={"device": "host", "latency_p90_ms": budget}, steps=2, finetune={"epochs": 1})
    prune.run(cfg, state, ctx)
    rows = ctx.metrics["rounds"]
    assert ctx.metrics["target_reached"] and ctx.metrics["device_target"]["met"]
    assert rows[-1]["latency_p90_ms"] <= budget and all(r["latency_p90_ms"] > budget for r in rows[:-1])
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[0] == 0 and len(rows) > 2
    assert len({r["params"] for r in rows}) == len(rows), "only increments that removed channels are timed"
    assert rows[-1]["val_accuracy"] is not None


def test_device_target_out_of_reach_says_so_with_the_closest_figure(tmp_path, monkeypatch, caplog):
    toy_device(monkeypatch)
    ctx = make_context(tmp_path)
    state = trained_state(ctx, epochs=1)
    cfg = prune.PruneConfig(target={"device": "host", "size_kb": 0.01}, steps=1, max_layer_ratio=0.3, finetune={"epochs": 0})
    with caplog.at_level("WARNING"):
        prune.run(cfg, state, ctx)
    assert not ctx.metrics["target_reached"]
    assert "could not bring size_kb on host to 0.01" in caplog.text and "closest" in caplog.text


@pytest.mark.parametrize(
    "target, message",
    [
        ({"device": "raspberry-pi-4"}, "a device target needs exactly one of latency_p90_ms, size_kb"),
        ({"latency_p90_ms": 1.0, "keep_macs": 0.5}, "latency_p90_ms needs device"),
        ({"device": "pi9", "size_kb": 10}, "unknown device 'pi9'"),
        ({"device": "host", "latency_p90_ms": -1}, "greater than 0"),
    ],
)
def test_bad_device_targets_are_recipe_errors(target, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        prune.PruneConfig(target=target)


def test_a_channel_shuffle_model_prunes_inside_its_branches(tmp_path, caplog):
    """torch-pruning reads a channel shuffle as a flatten (its index lists grew without bound, or it
    divided by zero) and misreads `chunk`'s sizes; pruned through the stage, the channels through
    each shuffle are kept and the branches lose channels."""
    import resource

    from pipeline.core.state import ModelState
    from pipeline.models import ModelConfig, build_model
    from pipeline.runtime.onnx_files import onnx_accuracy  # noqa: F401  (the export below must also run)

    ctx = make_context(tmp_path, train=128, test=64)
    torch.manual_seed(0)
    kwargs = {}  # the default widths: there torch-pruning also misreads `chunk` next to a concat
    model = build_model(ModelConfig(name="shufflenetv2", kwargs=kwargs), 1, 10)
    state = ModelState(model=model)
    before = size_figures(model, (1, 28, 28))
    shuffle_widths = [m.branch[2][0].out_channels for m in model.modules() if m.__class__.__name__ == "ShuffleUnit"]
    with caplog.at_level("INFO", logger="compress"):
        run(PruneConfig(target={"remove_channels": 0.5}, steps=2, finetune=TrainConfig(epochs=0)), state, ctx)
    assert "reshape(s) moving values across channels (a channel shuffle" in caplog.text
    after = size_figures(state.model, (1, 28, 28))
    assert after["params"] < 0.8 * before["params"], "the branches were pruned"
    units = [m for m in state.model.modules() if m.__class__.__name__ == "ShuffleUnit"]
    assert [m.branch[2][0].out_channels for m in units] == shuffle_widths, "channels through a shuffle keep their count"
    assert any(m.branch[0][0].out_channels < m.branch[2][0].out_channels for m in units)
    assert state.model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 8 * 1024 * 1024, "bounded: far below the 24 GB it once grew to"


def test_pruning_leaves_torch_prunings_functions_as_it_found_them(tmp_path):
    from torch_pruning.dependency import graph, index_mapping, shape_infer

    before = (index_mapping.update_reshape_index_mapping, shape_infer.init_shape_information, graph.DependencyGraph.get_all_groups)
    ctx = make_context(tmp_path, train=128, test=64)
    run(PruneConfig(target={"remove_channels": 0.3}, steps=1, finetune=TrainConfig(epochs=0)), trained_state(ctx, epochs=0), ctx)
    assert (index_mapping.update_reshape_index_mapping, shape_infer.init_shape_information, graph.DependencyGraph.get_all_groups) == before


@pytest.mark.parametrize(("epochs", "logged"), [(1, False), (2, True)])
def test_a_recovery_longer_than_one_epoch_logs_each_epoch(tmp_path, caplog, epochs, logged):
    """A long recovery must not leave the log silent; a one-epoch one is summed up by its round's line."""
    ctx = make_context(tmp_path, train=128, test=64)
    state = trained_state(ctx, epochs=1)
    with caplog.at_level("INFO", logger="compress"):
        run(PruneConfig(target={"remove_channels": 0.25}, steps=1, finetune=TrainConfig(epochs=epochs)), state, ctx)
    assert "prune round 1/1" in caplog.text
    assert (f"epoch 1/{epochs}: loss" in caplog.text) == logged


def test_a_layer_as_wide_as_the_classes_is_pruned_like_any_other(tmp_path):
    """Only the classifier keeps its width: a 10-channel conv early in a 10-class model shrinks too."""
    from pipeline.core.state import ModelState
    from pipeline.models.zoo import tiny_cnn

    ctx = make_context(tmp_path)
    state = ModelState(model=tiny_cnn(widths=(10, 16, 32, 32)))
    state = run(PruneConfig(target={"remove_channels": 0.5}, steps=1, finetune=TrainConfig(epochs=0)), state, ctx)
    assert conv_widths(state.model) == [5, 8, 16, 16] and state.model.fc.out_features == 10
