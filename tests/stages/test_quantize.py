import copy
import re

import onnx
import pytest
import torch

from exporters import ParityError
from pipeline.core.errors import StageError
from pipeline.runtime.onnx_files import onnx_accuracy
from pipeline.stages import export, quantize
from tests.stages.helpers import MISLABELLED_TEST, make_context, trained_state


def exported(tmp_path, epochs: int = 3):
    ctx = make_context(tmp_path, folder="01-export")
    state = export.run(export.ExportConfig(), trained_state(ctx, epochs=epochs), ctx)
    return state, ctx.metrics["accuracy"], make_context(tmp_path, folder="02-quantize")


def test_static_int8_runs_int8_kernels_and_keeps_accuracy(tmp_path):
    state, fp32_accuracy, ctx = exported(tmp_path)
    state = quantize.run(quantize.QuantizeConfig(calibration_samples=128, parity_samples=300, min_top1_agreement=0.8), state, ctx)
    path = tmp_path / state.artifacts["onnx_int8"]
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    coverage = ctx.metrics["int8_coverage"]
    assert coverage["op_counts"].get("QLinearConv", 0) == 4 and coverage["fp32_compute_ops"] == 0
    assert ctx.metrics["accuracy"] > fp32_accuracy - 0.05
    assert ctx.metrics["size_bytes"] < 0.7 * (tmp_path / state.artifacts["onnx_fp32"]).stat().st_size
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert "preprocessing" in meta and "int8 static QDQ" in meta["quantization"]


def int8_weight_extremes(path) -> int:
    """The largest magnitude among the file's INT8 weight initializers."""
    from onnx import numpy_helper

    weights = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights, "no INT8 weights in the file"
    return max(int(abs(w.astype(int)).max()) for w in weights)


@pytest.mark.parametrize(("reduce_range", "largest"), [(True, 64), (False, 127)])
def test_weights_are_7_bit_unless_asked_for_8(tmp_path, reduce_range, largest):
    """x86 CPUs without VNNI overflow 16-bit pair sums with full-range 8-bit weights: the default must be 7-bit."""
    state, _, ctx = exported(tmp_path, epochs=1)
    cfg = quantize.QuantizeConfig(calibration_samples=64, min_top1_agreement=0.1) if reduce_range else \
        quantize.QuantizeConfig(calibration_samples=64, min_top1_agreement=0.1, reduce_range=False)
    state = quantize.run(cfg, state, ctx)
    assert int8_weight_extremes(tmp_path / state.artifacts["onnx_int8"]) == largest
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / state.artifacts["onnx_int8"])).metadata_props}
    assert ("7-bit" in meta["quantization"]) == reduce_range, "the file says how its weights were quantized"


def test_more_calibration_samples_than_data_is_an_error(tmp_path):
    state, _, ctx = exported(tmp_path)
    with pytest.raises(StageError, match="calibration_samples: 100000 asked"):
        quantize.run(quantize.QuantizeConfig(calibration_samples=100000), state, ctx)


def test_too_few_calibration_samples_is_refused():
    with pytest.raises(ValueError, match="greater than or equal to 32"):
        quantize.QuantizeConfig(calibration_samples=4)


def make_first_block_sensitive(model, factor: float = 200.0) -> None:
    """Same function, hard to quantize: channel 0 of block 0 is scaled up by `factor` (BN gamma and
    beta, so the ReLU output scales too) and block 1's weights on that channel scaled down. One
    activation scale and one per-tensor weight scale must then cover a range `factor` times wider."""
    first_bn, second_conv = model.features[0][1], model.features[1][0]
    with torch.no_grad():
        first_bn.weight[0] *= factor
        first_bn.bias[0] *= factor
        second_conv.weight[:, 0] /= factor


def test_accuracy_aware_leaves_the_sensitive_layer_in_fp32_and_meets_its_budget(tmp_path):
    # 3,000 images (300 for validation: a third of a point each, so the 2-point budget is 6 images
    # and the search's choices do not turn on one image, whichever CPU ran the training).
    ctx = make_context(tmp_path, folder="01-export", train=3000)
    state = trained_state(ctx, epochs=3)
    make_first_block_sensitive(state.model)
    state = export.run(export.ExportConfig(), state, ctx)
    plain_ctx = make_context(tmp_path, folder="02-static", train=3000)
    quantize.run(quantize.QuantizeConfig(per_channel=False, calibration_samples=128, min_top1_agreement=0.1), copy.deepcopy(state), plain_ctx)
    fp32_val = onnx_accuracy(tmp_path / state.artifacts["onnx_fp32"], plain_ctx.data.val)
    static_drop = (fp32_val - onnx_accuracy(tmp_path / "02-static" / "model.int8.onnx", plain_ctx.data.val)) * 100
    assert static_drop > 5, "the sensitive layer should break plain per-tensor PTQ"

    ctx = make_context(tmp_path, folder="03-aware", train=3000)
    cfg = quantize.QuantizeConfig(method="accuracy_aware", per_channel=False, calibration_samples=128, max_accuracy_drop=2.0, calibrations=["minmax"], min_top1_agreement=0.8)
    quantize.run(cfg, state, ctx)
    aware = ctx.metrics["accuracy_aware"]
    assert aware["budget_met"] and aware["chosen"]["drop_points"] <= 2.0
    assert all("sensitivity rank" in row["reason"] for row in aware["fp32_nodes"])
    assert ctx.metrics["int8_coverage"]["fp32_compute_ops"] == len(aware["fp32_nodes"])
    # The wide channel is block 0's output and block 1's input: both convs must stay FP32 or its
    # range is quantized per tensor. The rest need not: the search drops the fallbacks it added
    # before those two, so at least 2 of the 5 compute ops stay INT8.
    fallback = {row["node"] for row in aware["fp32_nodes"]}
    assert {"/features/features.0/features.0.0/Conv", "/features/features.1/features.1.0/Conv"} <= fallback
    assert ctx.metrics["int8_coverage"]["int8_compute_ops"] >= 2


def test_accuracy_aware_scores_every_trial_on_the_validation_split_never_on_test(tmp_path):
    """The test split holds the validation images with wrong labels: any trial or reference scored on
    it would read near 0, where on validation the model scores well."""
    ctx = make_context(tmp_path, folder="01-export", train=1500, test=500, data=MISLABELLED_TEST)
    state = export.run(export.ExportConfig(), trained_state(ctx, epochs=3), ctx)
    fp32 = tmp_path / state.artifacts["onnx_fp32"]
    val, test = onnx_accuracy(fp32, ctx.data.val), onnx_accuracy(fp32, ctx.data.test)
    assert val > 0.5 and test < 0.15, "the data must tell the two splits apart"
    ctx = make_context(tmp_path, folder="02-aware", train=1500, test=500, data=MISLABELLED_TEST)
    cfg = quantize.QuantizeConfig(method="accuracy_aware", calibration_samples=64, max_accuracy_drop=1.0, calibrations=["minmax", "percentile"], min_top1_agreement=0.5)
    quantize.run(cfg, state, ctx)
    aware = ctx.metrics["accuracy_aware"]
    assert aware["fp32_val_accuracy"] == pytest.approx(val, abs=1e-5)
    assert len(aware["trials"]) >= 2 and all(t["val_accuracy"] > 0.45 for t in aware["trials"])
    assert all(t["drop_points"] == pytest.approx((val - t["val_accuracy"]) * 100, abs=1e-3) for t in aware["trials"])


def test_accuracy_aware_over_budget_keeps_the_best_model_and_says_so(tmp_path, caplog):
    state, _, ctx = exported(tmp_path)
    cfg = quantize.QuantizeConfig(method="accuracy_aware", calibration_samples=64, max_accuracy_drop=0.0, calibrations=["minmax"], max_fp32_nodes=1, min_top1_agreement=0.5)
    # a zero budget on a model whose INT8 copy differs at all cannot be met with one fallback
    with caplog.at_level("WARNING"):
        quantize.run(cfg, state, ctx)
    aware = ctx.metrics["accuracy_aware"]
    best = max(aware["trials"], key=lambda t: t["val_accuracy"])
    assert aware["chosen"]["val_accuracy"] == best["val_accuracy"]
    if not aware["budget_met"]:
        assert "no candidate met the 0.0-point budget" in caplog.text


def test_qat_exports_a_fully_int8_graph_and_distills_from_the_float_model(tmp_path):
    # 8 epochs (~65 %): a 3-epoch model (~48 %) has such small margins that one epoch of fine-tuning
    # flips 4 to 17 of its 300 test answers (CPU, then CUDA), too close to the 5-point bound below
    state, fp32_accuracy, ctx = exported(tmp_path, epochs=8)
    cfg = quantize.QuantizeConfig(
        method="qat", calibration_samples=64, min_top1_agreement=0.6,
        qat={"train": {"epochs": 1, "lr": 1e-4}, "distill": {"alpha": 0.5}},
    )
    quantize.run(cfg, state, ctx)
    coverage = ctx.metrics["int8_coverage"]
    assert coverage["fp32_compute_ops"] == 0 and coverage["op_counts"].get("QLinearConv") == 4
    assert {"ce", "kd"} <= set(ctx.metrics["qat"]["history"][0]["terms"])
    assert ctx.metrics["accuracy"] > fp32_accuracy - 0.05
    assert "QAT" in {p.key: p.value for p in onnx.load(str(tmp_path / state.artifacts["onnx_int8"])).metadata_props}["quantization"]


def test_dynamic_quantizes_the_linear_layer_and_warns_that_convs_stay_fp32(tmp_path, caplog):
    state, _, ctx = exported(tmp_path)
    with caplog.at_level("WARNING"):
        quantize.run(quantize.QuantizeConfig(method="dynamic", min_top1_agreement=0.8), state, ctx)
    ops = ctx.metrics["int8_coverage"]["op_counts"]
    assert ops.get("DynamicQuantizeMatMul", 0) + ops.get("MatMulInteger", 0) == 1
    assert "dynamic quantizes Linear layers only" in caplog.text


def test_neural_compressor_backend_quantizes_a_tiny_model(tmp_path):
    state, fp32_accuracy, ctx = exported(tmp_path)
    quantize.run(quantize.QuantizeConfig(backend="neural-compressor", calibration_samples=64, min_top1_agreement=0.8), state, ctx)
    assert ctx.metrics["int8_coverage"]["int8_compute_ops"] >= 1
    assert ctx.metrics["accuracy"] > fp32_accuracy - 0.05
    assert "neural-compressor" in ctx.metrics["quantization"]


def test_neural_compressor_autotune_scores_trials_in_onnxruntime(tmp_path):
    state, _, ctx = exported(tmp_path)
    cfg = quantize.QuantizeConfig(backend="neural-compressor", method="accuracy_aware", calibration_samples=64, calibrations=["minmax"], max_accuracy_drop=5.0, min_top1_agreement=0.8)
    quantize.run(cfg, state, ctx)
    aware = ctx.metrics["accuracy_aware"]
    assert aware["trials"] and aware["budget_met"]
    assert 0 < aware["trials"][0]["val_accuracy"] <= 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"method": "qat", "backend": "neural-compressor"}, "method 'qat' is not available with backend 'neural-compressor'; it supports: static, accuracy_aware"),
        ({"calibration": "percentile", "backend": "neural-compressor"}, "calibration 'percentile' is not available"),
        ({"method": "accuracy_aware", "max_accuracy_drop": -1}, "greater than or equal to 0"),
        ({"method": "int4"}, "Input should be 'static', 'dynamic', 'accuracy_aware' or 'qat'"),
    ],
)
def test_bad_quantize_settings_are_refused_with_the_allowed_values(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        quantize.QuantizeConfig(**fields)


def test_openvino_int8_comes_only_from_a_qdq_file_whatever_the_runtimes_before_it(tmp_path):
    """OpenVINO reads its INT8 IR from the QDQ ONNX file; with QOperator there is none to read, even
    after another runtime's INT8 twin was made in the same stage."""
    ctx = make_context(tmp_path, folder="01-export")
    state = export.run(export.ExportConfig(runtimes=["executorch", "openvino"]), trained_state(ctx, epochs=1), ctx)
    assert list(state.artifacts).index("executorch_fp32") < list(state.artifacts).index("openvino_fp32")
    ctx = make_context(tmp_path, folder="02-quantize")
    state = quantize.run(quantize.QuantizeConfig(format="qoperator", calibration_samples=64, min_top1_agreement=0.5), state, ctx)
    assert "executorch_int8" in state.artifacts and "openvino_int8" not in state.artifacts


def test_an_int8_file_that_disagrees_with_fp32_is_refused_and_never_shipped(tmp_path):
    """Per-tensor PTQ of a layer whose range it cannot cover changes many answers: below the
    agreement floor the file is renamed .rejected; at exactly the floor it ships."""
    ctx = make_context(tmp_path, folder="01-export")
    state = trained_state(ctx, epochs=3)
    make_first_block_sensitive(state.model)
    state = export.run(export.ExportConfig(), state, ctx)
    loose = make_context(tmp_path, folder="02-loose")
    cfg = dict(per_channel=False, calibration_samples=128, parity_samples=300)
    quantize.run(quantize.QuantizeConfig(**cfg, min_top1_agreement=0.1), copy.deepcopy(state), loose)
    agreement = loose.metrics["top1_agreement_with_fp32"]
    assert agreement < 0.95, "the sensitive layer should change answers"

    strict = make_context(tmp_path, folder="03-strict")
    with pytest.raises(ParityError, match=rf"the INT8 file model.int8.onnx agrees with its FP32 file model.onnx on only {agreement:.4f} of 300 test samples \(minimum 0.95\); it was not shipped. Try method"):
        quantize.run(quantize.QuantizeConfig(**cfg), copy.deepcopy(state), strict)
    assert not (tmp_path / "03-strict" / "model.int8.onnx").exists() and (tmp_path / "03-strict" / "model.int8.onnx.rejected").exists()

    at_floor = make_context(tmp_path, folder="04-floor")
    done = quantize.run(quantize.QuantizeConfig(**cfg, min_top1_agreement=agreement), copy.deepcopy(state), at_floor)
    assert "onnx_int8" in done.artifacts, "agreement equal to the floor meets it"
