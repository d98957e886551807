import pytest

from pipeline.deploy.variant_choice import Candidate, choose


def candidate(name, p50, size_kb, broken=(), unjudged=(), noise=0.0):
    budgets = {"max_latency_p90_ms": {"value": p50 * 1.1, "limit": 10, "passed": True}}
    budgets.update({b: {"value": 1, "limit": 0, "passed": False} for b in broken})
    budgets.update({b: {"value": None, "limit": 0, "passed": None} for b in unjudged})
    return Candidate(name, size_kb, p50, noise, budgets)


def test_fp32_ships_when_int8_is_slower_and_both_meet_the_budgets():
    chosen, reason = choose([candidate("onnx_int8", 0.036, 28), candidate("onnx_fp32", 0.024, 63)])
    assert chosen.artifact == "onnx_fp32"
    assert reason.startswith("onnx_fp32 meets every budget") and "1.50x faster at the median" in reason


def test_int8_ships_when_faster():
    chosen, _ = choose([candidate("onnx_int8", 0.17, 321), candidate("onnx_fp32", 0.34, 1070)])
    assert chosen.artifact == "onnx_int8"


def test_a_tie_goes_to_the_smaller_file():
    chosen, reason = choose([candidate("onnx_fp32", 0.100, 63), candidate("onnx_int8", 0.102, 28)])
    assert chosen.artifact == "onnx_int8" and "smaller" in reason


def test_the_faster_variant_loses_when_it_breaks_a_budget():
    chosen, reason = choose([candidate("onnx_fp32", 0.02, 1070, broken=["max_size_kb"]), candidate("onnx_int8", 0.04, 321)])
    assert chosen.artifact == "onnx_int8" and "onnx_fp32 breaks max_size_kb" in reason


def test_when_both_break_budgets_the_one_breaking_fewer_ships_and_says_so():
    chosen, reason = choose([candidate("onnx_fp32", 0.02, 900, broken=["max_size_kb", "min_accuracy"]), candidate("onnx_int8", 0.04, 300, broken=["min_accuracy"])])
    assert chosen.artifact == "onnx_int8" and "breaks 1 budget" in reason


def test_a_forced_variant_ships_even_when_slower():
    chosen, reason = choose([candidate("onnx_int8", 0.036, 28), candidate("onnx_fp32", 0.024, 63)], forced="onnx_int8")
    assert chosen.artifact == "onnx_int8" and "forced" in reason


def test_no_candidates_is_an_error():
    with pytest.raises(ValueError):
        choose([])


def test_a_difference_within_the_timing_noise_is_no_difference():
    """INT8 1.5x slower at the median, but the timings are so noisy (p10-p90 wider than the gap)
    that the smaller file ships and the reason says why."""
    slow, fast = candidate("onnx_int8", 0.036, 28, noise=0.013), candidate("onnx_fp32", 0.024, 63, noise=0.004)
    chosen, reason = choose([slow, fast])
    assert chosen.artifact == "onnx_int8" and "as fast within the timing noise" in reason and "noise 0.013 ms" in reason
    quieter = candidate("onnx_int8", 0.036, 28, noise=0.011)
    assert choose([quieter, fast])[0].artifact == "onnx_fp32", "a gap of 0.012 ms beats noise of 0.011 ms"
