import pytest

from pipeline.stages import export, validate
from tests.stages.helpers import make_context, trained_state


def test_validate_judges_each_device(tmp_path):
    ctx = make_context(tmp_path, folder="01-export")
    state = export.run(export.ExportConfig(), trained_state(ctx), ctx)
    ctx = make_context(tmp_path, folder="02-validate", devices=("host", "raspberry-pi-4"))
    state = validate.run(validate.ValidateConfig(runs=20, warmup=2), state, ctx)
    host, pi = state.devices["host"], state.devices["raspberry-pi-4"]
    assert host["latency_kind"] == "measured" and pi["latency_kind"] == "estimated"
    assert pi["threads"] == 4 and host["threads"] == 1
    assert pi["latency_ms"]["p90"] == round(pi["host_latency_ms"]["p90"] * 6.0, 5)
    assert host["latency_ms"]["p50"] <= host["latency_ms"]["p90"] <= host["latency_ms"]["p99"]
    assert host["artifact"] == "onnx_fp32"
    assert set(host["budgets"]) == {"max_size_kb", "max_latency_p90_ms", "min_accuracy", "max_accuracy_drop"}
    assert host["accuracy_drop_points"] == pytest.approx((0.5 - host["accuracy"]) * 100, abs=1e-3)
    assert host["passed"] == all(b["passed"] for b in host["budgets"].values())


def test_early_exit_reports_fractions_and_expected_latency(tmp_path):
    from tests.stages.test_export import headed_state

    ctx = make_context(tmp_path, folder="01-export")
    state = export.run(export.ExportConfig(exits=["head1", "head2"], exit_max_accuracy_drop=5.0), headed_state(ctx), ctx)
    ctx = make_context(tmp_path, folder="02-validate", devices=("host", "raspberry-pi-4"))
    state = validate.run(validate.ValidateConfig(runs=20, warmup=2), state, ctx)
    early = ctx.metrics["early_exit"]
    assert [row["exit"] for row in early["exits"]] == ["head1", "head2", "final"]
    assert sum(row["fraction"] for row in early["exits"]) == pytest.approx(1.0)
    host = early["host_latency_ms"]["1"]
    assert len(host["segments_p50"]) == 3
    assert min(host["segments_p50"][:1]) <= host["expected"] <= sum(host["segments_p50"]) + 1e-9
    pi = state.devices["raspberry-pi-4"]["early_exit"]
    assert pi["expected_latency_ms"] == pytest.approx(early["host_latency_ms"]["4"]["expected"] * 6.0, rel=1e-4)
