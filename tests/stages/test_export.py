import json

import onnx
import pytest

from exporters import ParityError
from pipeline.stages.export import ExportConfig, run
from tests.stages.helpers import make_context, trained_state


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
