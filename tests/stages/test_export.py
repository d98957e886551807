import json

import onnx
import pytest

from exporters import ParityError
from pipeline.stages.export import ExportConfig, run
from tests.stages.helpers import MISLABELLED_TEST, make_context, trained_state


def test_export_records_parity_accuracy_and_metadata(tmp_path):
    ctx = make_context(tmp_path, folder="02-export")
    state = run(ExportConfig(), trained_state(ctx), ctx)
    assert state.artifacts["onnx_fp32"] == "02-export/model.onnx"
    parity = ctx.metrics["parity"]
    assert parity["max_abs_diff"] < 1e-3 and parity["top1_agreement"] >= 0.99
    assert ctx.metrics["size_bytes"] == (tmp_path / "02-export/model.onnx").stat().st_size
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "02-export/model.onnx")).metadata_props}
    assert json.loads(meta["preprocessing"])["mean"] == pytest.approx(ctx.data.mean)
    assert len(json.loads(meta["class_names"])) == 10


def test_impossible_tolerance_fails_the_stage(tmp_path):
    ctx = make_context(tmp_path)
    with pytest.raises(ParityError):
        run(ExportConfig(max_abs_diff=1e-30), trained_state(ctx), ctx)


def test_uncompressed_export_without_a_reference_becomes_the_reference(tmp_path):
    ctx = make_context(tmp_path)
    state = trained_state(ctx)
    state.reference = {}
    state = run(ExportConfig(), state, ctx)
    assert state.reference["accuracy"] == ctx.metrics["accuracy"] and state.reference["source"] == "export"


def headed_state(ctx, kind="linear", epochs=1, head_epochs=2):
    from pipeline.stages.aux_heads import AuxHeadsConfig
    from pipeline.stages.aux_heads import run as attach
    from pipeline.training.loop import TrainConfig

    return attach(AuxHeadsConfig(kind=kind, train=TrainConfig(epochs=head_epochs, lr=0.01)), trained_state(ctx, epochs=epochs), ctx)


def test_heads_are_stripped_from_the_export(tmp_path):
    ctx = make_context(tmp_path, folder="03-export")
    state = run(ExportConfig(), headed_state(ctx, "bottleneck"), ctx)
    graph = onnx.load(str(tmp_path / "03-export/model.onnx")).graph
    assert [o.name for o in graph.output] == ["logits"]
    assert ctx.metrics["heads_stripped"] == ["head1", "head2"]
    assert ctx.metrics["params"] == sum(p.numel() for p in state.model.parameters()), "the backbone's parameters, not the heads'"
    assert "onnx_exits" not in state.artifacts


def test_early_exit_model_has_every_exit_and_applies_its_thresholds(tmp_path):
    import numpy as np
    import onnxruntime as ort

    from pipeline.runtime.early_exit import softmax

    ctx = make_context(tmp_path, folder="03-export")
    state = run(ExportConfig(exits=["head2", "head1"], exit_max_accuracy_drop=5.0), headed_state(ctx), ctx)
    path = tmp_path / state.artifacts["onnx_exits"]
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == ["logits", "exit_head1", "exit_head2", "features_head1", "features_head2"]
    meta = {p.key: json.loads(p.value) for p in model.metadata_props if p.key.startswith("exit")}
    assert meta["exits"] == ["head1", "head2"], "exits run shallow first, whatever order the recipe gave"
    thresholds = meta["exit_thresholds"]
    summary = ctx.metrics["early_exit"]["test"]
    assert sum(row["fraction"] for row in summary["exits"]) == pytest.approx(1.0)

    # Run the cascade of segments by hand, as a device would, and compare with the recorded summary.
    sessions = [ort.InferenceSession(str(path.parent / s), providers=["CPUExecutionProvider"]) for s in meta["exit_segments"]]
    taken = []
    for x in ctx.data.test.take()[0].numpy()[:, None]:
        value = x
        for k, sess in enumerate(sessions[:-1]):
            exit_logits, value = sess.run(None, {sess.get_inputs()[0].name: value})
            if thresholds[k] is not None and softmax(exit_logits).max() >= thresholds[k]:
                taken.append(k)
                break
        else:
            sessions[-1].run(None, {sessions[-1].get_inputs()[0].name: value})
            taken.append(len(sessions) - 1)
    fractions = np.bincount(taken, minlength=3) / len(taken)
    assert fractions == pytest.approx([row["fraction"] for row in summary["exits"]], abs=1e-3)
    assert summary["accuracy"] >= summary["full_model_accuracy"] - 0.08


def test_exit_thresholds_are_chosen_on_the_validation_split_never_on_test(tmp_path):
    """The test split holds the validation images with wrong labels, so thresholds chosen on it
    differ from those chosen on validation: the file must carry the validation ones."""
    from pipeline.runtime.early_exit import choose_thresholds
    from pipeline.runtime.onnx_files import split_outputs

    ctx = make_context(tmp_path, folder="03-export", train=1500, test=500, data=MISLABELLED_TEST)
    state = run(ExportConfig(exits=["head1", "head2"], exit_max_accuracy_drop=0.0), headed_state(ctx, epochs=4, head_epochs=6), ctx)
    path = tmp_path / state.artifacts["onnx_exits"]
    chosen = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["exit_thresholds"])

    def thresholds_on(split):
        outputs, labels = split_outputs(path, split)
        return choose_thresholds(outputs[1:3], outputs[0], labels, 0.0)

    assert thresholds_on(ctx.data.test) != thresholds_on(ctx.data.val), "the data must tell the two splits apart"
    assert chosen == thresholds_on(ctx.data.val) == ctx.metrics["early_exit"]["thresholds"]


def test_unknown_exit_lists_the_heads(tmp_path):
    from pipeline.core.errors import StageError

    ctx = make_context(tmp_path)
    with pytest.raises(StageError, match="no head named head7; the model's heads: head1, head2"):
        run(ExportConfig(exits=["head7"]), headed_state(ctx), ctx)
