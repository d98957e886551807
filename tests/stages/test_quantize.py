import onnx
import pytest

from pipeline.errors import StageError
from pipeline.stages import export, quantize
from tests.stages.helpers import make_context, trained_state


def exported(tmp_path):
    ctx = make_context(tmp_path, folder="01-export")
    state = export.run(export.ExportConfig(), trained_state(ctx, epochs=3), ctx)
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


def test_more_calibration_samples_than_data_is_an_error(tmp_path):
    state, _, ctx = exported(tmp_path)
    with pytest.raises(StageError, match="calibration_samples: 100000 asked"):
        quantize.run(quantize.QuantizeConfig(calibration_samples=100000), state, ctx)


def test_too_few_calibration_samples_is_refused():
    with pytest.raises(ValueError, match="greater than or equal to 32"):
        quantize.QuantizeConfig(calibration_samples=4)
