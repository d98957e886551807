"""Stages that the RGB end-to-end recipe does not reach, on 3-channel 12x12 images of 3 classes read
lazily from a user's Dataset: heads, early exits and their cascade, QAT."""

from pipeline.stages import aux_heads, export, quantize, validate
from pipeline.training.loop import TrainConfig
from tests.stages.helpers import RGB, make_context, trained_state


def test_heads_exits_and_the_cascade_on_rgb(tmp_path):
    ctx = make_context(tmp_path, folder="01-aux", train=240, test=90, data=RGB)
    assert ctx.data.input_shape == (3, 12, 12) and len(ctx.data.mean) == 3
    state = aux_heads.run(aux_heads.AuxHeadsConfig(kind="linear", train=TrainConfig(epochs=1, lr=0.01)), trained_state(ctx, epochs=1), ctx)
    ctx = make_context(tmp_path, folder="02-export", train=240, test=90, data=RGB)
    state = export.run(export.ExportConfig(exits=["head1"], exit_max_accuracy_drop=5.0, parity_samples=32), state, ctx)
    assert ctx.metrics["early_exit"]["exits"] == ["head1"]
    ctx = make_context(tmp_path, folder="03-validate", train=240, test=90, data=RGB)
    state = validate.run(validate.ValidateConfig(runs=20, warmup=2), state, ctx)
    assert 0 <= ctx.metrics["early_exit"]["accuracy"] <= 1 and state.devices["host"]["early_exit"]["expected_latency_ms"] > 0


def test_qat_on_rgb(tmp_path):
    ctx = make_context(tmp_path, folder="01-export", train=240, test=90, data=RGB)
    state = export.run(export.ExportConfig(parity_samples=32), trained_state(ctx, epochs=1), ctx)
    ctx = make_context(tmp_path, folder="02-quantize", train=240, test=90, data=RGB)
    cfg = quantize.QuantizeConfig(method="qat", calibration_samples=64, parity_samples=60, min_top1_agreement=0.5, qat={"train": {"epochs": 1, "lr": 1e-4}})
    state = quantize.run(cfg, state, ctx)
    assert ctx.metrics["int8_coverage"]["int8_compute_ops"] >= 1 and "onnx_int8" in state.artifacts
