import pytest
import torch

from pipeline.deploy import device_figures
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
    assert pi["host_latency_ms"]["threads"] == 1, "the host times one thread, whatever the device runs"
    assert pi["latency_ms"]["p90"] == round(pi["host_latency_ms"]["p90"] * 6.0 / 2.3, 5), "x factor / thread speed-up"
    assert host["latency_ms"]["p50"] <= host["latency_ms"]["p90"] <= host["latency_ms"]["p99"]
    assert host["artifact"] == "onnx_fp32"
    assert set(host["budgets"]) == {"max_size_kb", "max_latency_p90_ms", "min_accuracy", "max_accuracy_drop", "max_peak_memory_mb"}
    assert 20 < host["peak_memory_mb"] < 2000, "a Python + onnxruntime process"
    assert pi["budgets"]["max_size_gzip_kb"]["value"] == round(pi["size_gzip_bytes"] / 1024, 6) < pi["size_bytes"] / 1024
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
    host = early["host_latency_ms"]
    assert len(host["segments_p50"]) == 3
    assert min(host["segments_p50"][:1]) <= host["expected"] <= sum(host["segments_p50"]) + 1e-9
    pi = state.devices["raspberry-pi-4"]["early_exit"]
    assert pi["expected_latency_ms"] == pytest.approx(host["expected"] * 6.0 / 2.3, rel=1e-4)


def int8_state(tmp_path):
    from pipeline.stages import quantize

    ctx = make_context(tmp_path, folder="01-export")
    state = export.run(export.ExportConfig(), trained_state(ctx), ctx)
    ctx = make_context(tmp_path, folder="02-quantize")
    return quantize.run(quantize.QuantizeConfig(calibration_samples=64, min_top1_agreement=0.5), state, ctx)


def fake_latency(int8_ms: float, fp32_ms: float):
    def measure(paths, sample, threads, warmup, runs):
        figures = lambda ms: {"p50": ms, "p90": ms, "p99": ms, "mean": ms, "spread": 0.0, "runs": runs, "threads": threads}  # noqa: E731
        return {name: figures(int8_ms if "int8" in path.name else fp32_ms) for name, path in paths.items()}

    return measure


def test_each_device_gets_fp32_when_a_timing_says_int8_is_slower(tmp_path, monkeypatch):
    state = int8_state(tmp_path)
    monkeypatch.setattr(device_figures, "measure_latencies", fake_latency(int8_ms=0.05, fp32_ms=0.03))
    ctx = make_context(tmp_path, folder="03-validate", devices=("host", "raspberry-pi-4"))
    state = validate.run(validate.ValidateConfig(runs=20, warmup=2), state, ctx)
    for device in state.devices.values():
        assert device["artifact"] == "onnx_fp32" and device["size_bytes"] == (tmp_path / state.artifacts["onnx_fp32"]).stat().st_size
        assert "over onnx_int8: +67 % speed" in device["choice"]["reason"]
        assert set(device["choice"]["candidates"]) == {"onnx_int8", "onnx_fp32"}
    assert ctx.metrics["shipped"] == {"host": "onnx_fp32", "raspberry-pi-4": "onnx_fp32"}


def test_files_timed_together_are_compared_round_by_round_on_every_device(tmp_path, monkeypatch):
    """INT8 slower than FP32 in each of 10 interleaved rounds, single runs spread wider than the gap:
    the rounds decide, scaled to each device's estimate, and the reason says how many rounds each won."""
    state = int8_state(tmp_path)

    def measure(paths, sample, threads, warmup, runs):
        def figures(ms):
            return {"p50": ms, "p90": 2 * ms, "p99": 3 * ms, "mean": ms, "spread": 0.6, "runs": runs, "threads": threads, "rounds_p50": [ms] * 10}
        return {name: figures(0.06 if "int8" in path.name else 0.05) for name, path in paths.items()}

    monkeypatch.setattr(device_figures, "measure_latencies", measure)
    ctx = make_context(tmp_path, folder="03-validate", devices=("host", "raspberry-pi-4"))
    devices = validate.run(validate.ValidateConfig(runs=20, warmup=2), state, ctx).devices
    for device in devices.values():
        assert device["artifact"] == "onnx_fp32" and "+20 % speed" in device["choice"]["reason"]
        assert "faster in 10 of 10 interleaved rounds" in device["choice"]["reason"]
    pi = devices["raspberry-pi-4"]["latency_ms"]
    assert pi["rounds_p50"] == [pi["p50"]] * 10 and pi["p50"] > devices["host"]["latency_ms"]["p50"]


def test_int8_ships_when_faster_and_a_recipe_can_force_it(tmp_path, monkeypatch):
    state = int8_state(tmp_path)
    monkeypatch.setattr(device_figures, "measure_latencies", fake_latency(int8_ms=0.02, fp32_ms=0.04))
    ctx = make_context(tmp_path, folder="03-validate")
    assert validate.run(validate.ValidateConfig(runs=20, warmup=2), state, ctx).devices["host"]["artifact"] == "onnx_int8"
    monkeypatch.setattr(device_figures, "measure_latencies", fake_latency(int8_ms=0.08, fp32_ms=0.04))
    ctx = make_context(tmp_path, folder="04-validate")
    forced = validate.run(validate.ValidateConfig(artifact="onnx_int8", runs=20, warmup=2), state, ctx).devices["host"]
    assert forced["artifact"] == "onnx_int8" and "forced" in forced["choice"]["reason"]
    assert set(forced["choice"]["candidates"]) == {"onnx_int8"}


def test_ship_pins_each_named_devices_file_and_the_others_still_choose(tmp_path, monkeypatch):
    """`ship` (what a tuned recipe carries): the named device ships its file even where this run's
    timing says the other is faster; an unnamed device chooses by the timing; a device or a file the
    run does not have is refused by name, and so is `ship` beside `artifact`."""
    from pydantic import ValidationError

    from pipeline.core.errors import StageError

    state = int8_state(tmp_path)
    monkeypatch.setattr(device_figures, "measure_latencies", fake_latency(int8_ms=0.08, fp32_ms=0.04))
    ctx = make_context(tmp_path, folder="03-validate", devices=("host", "raspberry-pi-4"))
    devices = validate.run(validate.ValidateConfig(ship={"raspberry-pi-4": "onnx_int8"}, runs=20, warmup=2), state, ctx).devices
    pi, host = devices["raspberry-pi-4"], devices["host"]
    assert pi["artifact"] == "onnx_int8" and pi["choice"]["reason"] == "onnx_int8 forced by validate.ship"
    assert pi["choice"]["summary"] == "onnx_int8, forced by validate.ship" and set(pi["choice"]["candidates"]) == {"onnx_int8", "onnx_fp32"}
    assert host["artifact"] == "onnx_fp32" and "forced" not in host["choice"]["reason"]
    ctx = make_context(tmp_path, folder="04-validate", devices=("host", "raspberry-pi-4"))
    with pytest.raises(StageError, match=r"validate.ship: intel-n100 is not among this recipe's devices \(host, raspberry-pi-4\)"):
        validate.run(validate.ValidateConfig(ship={"intel-n100": "onnx_int8"}, runs=20, warmup=2), state, ctx)
    with pytest.raises(StageError, match=r"validate.ship.host: executorch_int8 is not a file this run made \(onnx_fp32, onnx_int8\)"):
        validate.run(validate.ValidateConfig(ship={"host": "executorch_int8"}, runs=20, warmup=2), state, ctx)
    with pytest.raises(ValidationError, match="not both"):
        validate.ValidateConfig(artifact="onnx_int8", ship={"host": "onnx_int8"})


def test_variants_are_timed_in_interleaved_rounds(tmp_path):
    from pipeline.runtime.onnx_files import measure_latencies

    state = int8_state(tmp_path)
    paths = {name: tmp_path / state.artifacts[name] for name in ("onnx_int8", "onnx_fp32")}
    timed = measure_latencies(paths, torch.zeros(1, 1, 28, 28).numpy(), threads=1, warmup=2, runs=40, rounds=4)
    for figures in timed.values():
        assert figures["interleaved"] and figures["runs"] >= 40 and figures["p50"] <= figures["p90"] <= figures["p99"]
        assert len(figures["rounds_p50"]) == 4
