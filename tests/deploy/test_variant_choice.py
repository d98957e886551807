import pytest

from pipeline.deploy.variant_choice import Candidate, choose


def candidate(name, p50, size_kb, broken=(), unjudged=(), noise=0.0, accuracy=None, rounds=()):
    budgets = {"max_latency_p90_ms": {"value": p50 * 1.1, "limit": 10, "passed": True}}
    budgets.update({b: {"value": 1, "limit": 0, "passed": False} for b in broken})
    budgets.update({b: {"value": None, "limit": 0, "passed": None} for b in unjudged})
    return Candidate(name, size_kb, p50, noise, budgets, accuracy=accuracy, rounds_p50=tuple(rounds))


def test_fp32_ships_when_int8_is_slower_and_both_meet_the_budgets():
    chosen, reason = choose([candidate("onnx_int8", 0.036, 28), candidate("onnx_fp32", 0.024, 63)])
    assert chosen.artifact == "onnx_fp32"
    assert reason.startswith("onnx_fp32 meets every budget on validation") and "over onnx_int8: +50 % speed" in reason


def test_int8_ships_when_faster():
    chosen, _ = choose([candidate("onnx_int8", 0.17, 321), candidate("onnx_fp32", 0.34, 1070)])
    assert chosen.artifact == "onnx_int8"


def test_a_tie_goes_to_the_smaller_file():
    chosen, reason = choose([candidate("onnx_fp32", 0.100, 63), candidate("onnx_int8", 0.102, 28)])
    assert chosen.artifact == "onnx_int8" and "the same speed within the noise" in reason and "-56 % size" in reason


def test_the_faster_variant_loses_when_it_breaks_a_budget():
    chosen, reason = choose([candidate("onnx_fp32", 0.02, 1070, broken=["max_size_kb"]), candidate("onnx_int8", 0.04, 321)])
    assert chosen.artifact == "onnx_int8" and "onnx_fp32 breaks max_size_kb" in reason


def test_when_both_break_budgets_the_one_breaking_fewer_ships_and_says_so():
    chosen, reason = choose([candidate("onnx_fp32", 0.02, 900, broken=["max_size_kb", "min_accuracy"]), candidate("onnx_int8", 0.04, 300, broken=["min_accuracy"])])
    assert chosen.artifact == "onnx_int8" and "breaks 1 budget" in reason


def test_a_forced_variant_ships_even_when_slower():
    chosen, reason = choose([candidate("onnx_int8", 0.036, 28), candidate("onnx_fp32", 0.024, 63)], forced="onnx_int8")
    assert chosen.artifact == "onnx_int8" and reason == "onnx_int8 forced by validate.artifact"
    chosen, reason = choose([candidate("onnx_int8", 0.036, 28), candidate("onnx_fp32", 0.024, 63)], forced="onnx_int8", forced_by="validate.ship")
    assert chosen.artifact == "onnx_int8" and reason == "onnx_int8 forced by validate.ship"


def test_the_reason_states_what_speed_cost_in_accuracy():
    """The 16 k recipe's case: INT8 1.08x faster for 0.27 points of validation accuracy."""
    int8, fp32 = candidate("onnx_int8", 0.0310, 20, accuracy=0.9223), candidate("onnx_fp32", 0.0335, 60, accuracy=0.9250)
    chosen, reason = choose([fp32, int8])
    assert chosen.artifact == "onnx_int8"
    assert "preferring latency: over onnx_fp32: +8 % speed (p50 0.031 vs 0.0335 ms), -0.27 points, -67 % size" in reason


def test_a_device_that_prefers_accuracy_gets_the_more_accurate_file_even_when_slower():
    int8, fp32 = candidate("onnx_int8", 0.0310, 20, accuracy=0.9223), candidate("onnx_fp32", 0.0335, 60, accuracy=0.9250)
    chosen, reason = choose([int8, fp32], prefer="accuracy")
    assert chosen.artifact == "onnx_fp32"
    assert "preferring accuracy: over onnx_int8: -7 % speed (p50 0.0335 vs 0.031 ms), +0.27 points, +200 % size" in reason
    assert choose([int8, fp32], prefer="latency")[0].artifact == "onnx_int8"


def test_preferring_accuracy_falls_back_to_speed_when_accuracies_tie():
    int8, fp32 = candidate("onnx_int8", 0.020, 20, accuracy=0.92), candidate("onnx_fp32", 0.030, 60, accuracy=0.92)
    assert choose([fp32, int8], prefer="accuracy")[0].artifact == "onnx_int8"


def test_a_device_that_prefers_size_gets_the_smallest_file_even_when_slower():
    int8, fp32 = candidate("onnx_int8", 0.040, 20, accuracy=0.92), candidate("onnx_fp32", 0.030, 60, accuracy=0.93)
    chosen, reason = choose([fp32, int8], prefer="size")
    assert chosen.artifact == "onnx_int8" and "over onnx_fp32: -25 % speed" in reason and "-67 % size" in reason
    assert choose([fp32, int8], prefer="latency")[0].artifact == "onnx_fp32"


def test_no_preference_beats_a_budget():
    """The more accurate file breaks the size budget: a device that prefers accuracy still gets the other."""
    big = candidate("onnx_fp32", 0.030, 60, broken=["max_size_kb"], accuracy=0.95)
    small = candidate("onnx_int8", 0.040, 20, accuracy=0.90)
    for prefer in ("latency", "accuracy", "size"):
        assert choose([big, small], prefer=prefer)[0].artifact == "onnx_int8"


def test_an_unknown_preference_is_refused():
    with pytest.raises(ValueError, match="prefer must be one of latency, accuracy, size"):
        choose([candidate("onnx_fp32", 0.03, 60)], prefer="speed")


def test_no_candidates_is_an_error():
    with pytest.raises(ValueError, match="^no variant to choose from$"):
        choose([])


def test_a_single_file_ships_and_says_it_was_the_only_one():
    assert choose([candidate("onnx_fp32", 0.03, 60)]) == (candidate("onnx_fp32", 0.03, 60), "onnx_fp32 is the only variant this run made")


def test_a_difference_within_the_timing_noise_is_no_difference():
    """INT8 1.5x slower at the median, but the timings are so noisy (p10-p90 wider than the gap)
    that the smaller file ships and the reason says why."""
    slow, fast = candidate("onnx_int8", 0.036, 28, noise=0.013), candidate("onnx_fp32", 0.024, 63, noise=0.004)
    chosen, reason = choose([slow, fast])
    assert chosen.artifact == "onnx_int8" and "the same speed within the noise" in reason and "noise 0.013 ms" in reason
    quieter = candidate("onnx_int8", 0.036, 28, noise=0.011)
    assert choose([quieter, fast])[0].artifact == "onnx_fp32", "a gap of 0.012 ms beats noise of 0.011 ms"


def toy_widths(limit_ms: float) -> list[Candidate]:
    """FP32 and INT8 files at four nested widths on a toy latency model: latency grows with width², INT8 1.6x faster."""
    rows = []
    for width in (0.25, 0.5, 0.75, 1.0):
        for name, speed in (("onnx_fp32", 1.0), ("onnx_int8", 1.6)):
            p50 = 0.4 * width**2 / speed
            artifact = name if width == 1 else f"{name}@w{width:g}"
            budgets = {"max_latency_p90_ms": {"value": p50, "limit": limit_ms, "passed": p50 <= limit_ms}}
            rows.append(Candidate(artifact, 60 * width**2 / (4 if name == "onnx_int8" else 1), p50, 0.001, budgets, width))
    return rows


@pytest.mark.parametrize("limit_ms, expected", [(0.5, "onnx_int8"), (0.2, "onnx_int8@w0.75"), (0.1, "onnx_int8@w0.5"), (0.05, "onnx_int8@w0.25")])
def test_each_device_gets_the_widest_width_that_meets_its_budgets(limit_ms, expected):
    chosen, reason = choose(toy_widths(limit_ms))
    assert chosen.artifact == expected
    assert reason.startswith(f"width {chosen.width:g} is the widest that meets every budget")


def test_the_wider_widths_say_what_they_break():
    chosen, reason = choose(toy_widths(0.1))
    assert "width 0.75 breaks max_latency_p90_ms" in reason and "width 1 breaks max_latency_p90_ms" in reason


def test_the_chosen_width_says_what_its_other_files_break():
    """At width 0.75 under 0.2 ms the FP32 file breaks the latency budget and the INT8 one ships: the
    reason names the FP32 file, it does not call the INT8 file the only one the run made."""
    chosen, reason = choose(toy_widths(0.2))
    assert chosen.artifact == "onnx_int8@w0.75"
    assert "onnx_fp32@w0.75 breaks max_latency_p90_ms" in reason and "only variant" not in reason


def test_when_no_width_meets_the_budgets_the_fastest_file_ships():
    chosen, reason = choose(toy_widths(0.001))
    assert chosen.artifact == "onnx_int8@w0.25" and "breaks 1 budget" in reason


def toy_runtimes(limit_ms: float, admitted: set[str]) -> list[Candidate]:
    """Each runtime × precision on a toy latency table (ms): ExecuTorch INT8 fastest, OpenVINO slowest."""
    table = {"onnx_fp32": 0.30, "onnx_int8": 0.20, "executorch_fp32": 0.28, "executorch_int8": 0.12, "ncnn_fp32": 0.25, "openvino_fp32": 0.9, "openvino_int8": 0.6}
    runtime = {"onnx": "onnxruntime", "executorch": "executorch", "ncnn": "ncnn", "openvino": "openvino"}
    rows = []
    for artifact, p50 in table.items():
        if runtime[artifact.split("_")[0]] in admitted:
            budgets = {"max_latency_p90_ms": {"value": p50, "limit": limit_ms, "passed": p50 <= limit_ms}}
            rows.append(Candidate(artifact, 50.0, p50, 0.005, budgets, runtime=runtime[artifact.split("_")[0]]))
    return rows


@pytest.mark.parametrize("admitted, expected", [
    ({"onnxruntime", "executorch", "ncnn", "openvino"}, "executorch_int8"),
    ({"onnxruntime", "ncnn"}, "onnx_int8"),
    ({"ncnn", "openvino"}, "ncnn_fp32"),
    ({"openvino"}, "openvino_int8"),
])
def test_each_device_gets_the_fastest_passing_file_among_its_runtimes(admitted, expected):
    chosen, reason = choose(toy_runtimes(1.0, admitted))
    assert chosen.artifact == expected and reason.startswith(f"{expected} meets every budget")


def test_a_faster_file_that_breaks_a_budget_does_not_ship():
    rows = toy_runtimes(1.0, {"executorch", "ncnn"})
    rows[1].budgets["max_size_kb"] = {"value": 50.0, "limit": 40.0, "passed": False}  # executorch_int8, the fastest
    chosen, reason = choose(rows)
    assert chosen.artifact == "ncnn_fp32" and "executorch_int8 breaks max_size_kb" in reason


def test_the_noisier_timing_counts_whichever_file_it_belongs_to():
    quiet, noisy = candidate("onnx_fp32", 0.024, 63, noise=0.001), candidate("onnx_int8", 0.036, 28, noise=0.013)
    for order in ([quiet, noisy], [noisy, quiet]):
        assert choose(order)[0].artifact == "onnx_int8", "a 0.012 ms gap inside 0.013 ms of noise is no difference: the smaller ships"


def test_a_gap_exactly_equal_to_the_noise_is_no_difference():
    fast, slow = candidate("onnx_fp32", 1.0, 60, noise=0.5), candidate("onnx_int8", 1.5, 20, noise=0.5)
    chosen, reason = choose([fast, slow])
    assert chosen.artifact == "onnx_int8" and "the same speed within the noise (p50 1.5 vs 1 ms, noise 0.5 ms)" in reason


def test_preferring_accuracy_picks_the_more_accurate_whichever_comes_first():
    better, worse = candidate("onnx_fp32", 0.030, 60, accuracy=0.93), candidate("onnx_int8", 0.020, 20, accuracy=0.90)
    for order in ([better, worse], [worse, better]):
        chosen, reason = choose(order, prefer="accuracy")
        assert chosen.artifact == "onnx_fp32"
    assert "over onnx_int8: -33 % speed (p50 0.03 vs 0.02 ms), +3.00 points, +200 % size" in reason


@pytest.mark.parametrize("missing", [0, 1])
def test_without_a_validation_accuracy_the_preference_falls_back_to_speed(missing):
    """A file made elsewhere has no validation figure: accuracy cannot rank it, speed does."""
    rows = [candidate("onnx_fp32", 0.030, 60, accuracy=0.93), candidate("onnx_int8", 0.020, 20, accuracy=0.90)]
    rows[missing].accuracy = None
    chosen, reason = choose(rows, prefer="accuracy")
    assert chosen.artifact == "onnx_int8" and "points" not in reason


def test_fewer_unjudged_budgets_win_whichever_comes_first():
    judged, unjudged = candidate("onnx_fp32", 0.030, 60), candidate("onnx_int8", 0.010, 20, unjudged=["min_accuracy"])
    for order in ([judged, unjudged], [unjudged, judged]):
        chosen, reason = choose(order)
        assert chosen.artifact == "onnx_fp32"
        assert reason == "onnx_fp32 meets every budget on validation; preferring latency: onnx_int8 could not be judged on min_accuracy"


def test_every_reason_names_each_budget_and_each_other_file():
    chosen, reason = choose([
        candidate("onnx_fp32", 0.030, 60, broken=["min_accuracy"], unjudged=["max_peak_memory_mb", "max_accuracy_drop"]),
        candidate("onnx_int8", 0.010, 20, broken=["min_accuracy", "max_size_kb"]),
        candidate("ncnn_fp32", 0.020, 30, broken=["min_accuracy"], unjudged=["max_peak_memory_mb", "max_accuracy_drop", "max_size_gzip_kb"]),
    ])
    assert reason == (
        "onnx_fp32 breaks 1 budget(s) on validation; preferring latency: onnx_int8 breaks min_accuracy, max_size_kb "
        "(onnx_fp32 breaks min_accuracy); ncnn_fp32 could not be judged on max_peak_memory_mb, max_accuracy_drop, max_size_gzip_kb"
    )
    chosen, reason = choose([candidate("onnx_fp32", 0.030, 60, unjudged=["min_accuracy", "max_accuracy_drop"]), candidate("onnx_int8", 0.030, 20, broken=["max_size_kb"])])
    assert reason == (
        "onnx_fp32 cannot be judged on min_accuracy, max_accuracy_drop on validation; preferring latency: onnx_int8 breaks max_size_kb"
    )


def test_two_widths_follow_the_width_rule_and_say_what_the_wider_breaks():
    rows = [r for r in toy_widths(0.2) if r.width in (0.75, 1.0)]
    rows[-1].budgets["max_size_kb"] = {"value": 60, "limit": 50, "passed": False}  # width 1 INT8 also breaks the size
    rows[-1].budgets["min_accuracy"] = {"value": None, "limit": 0.9, "passed": None}
    rows[-2].budgets["min_accuracy"] = {"value": None, "limit": 0.9, "passed": None}
    chosen, reason = choose(rows)
    assert chosen.artifact == "onnx_int8@w0.75"
    assert reason.startswith(
        "width 0.75 is the widest that meets every budget (width 1 breaks max_latency_p90_ms, cannot judge min_accuracy); "
        "onnx_int8@w0.75 meets every budget on validation; preferring latency: onnx_fp32@w0.75 breaks max_latency_p90_ms"
    )


def test_the_widest_width_meeting_every_budget_names_no_wider_one():
    chosen, reason = choose(toy_widths(0.5))
    assert reason.startswith("width 1 is the widest that meets every budget; onnx_int8 meets every budget on validation")


def test_a_wider_width_that_breaks_several_budgets_names_each():
    rows = toy_widths(0.1)
    for row in rows:
        if row.width == 0.75:
            row.budgets["max_size_kb"] = {"value": 60, "limit": 50, "passed": False}
    chosen, reason = choose(rows)
    assert "(width 0.75 breaks max_latency_p90_ms, max_size_kb; width 1 breaks max_latency_p90_ms)" in reason


def test_a_chosen_file_that_breaks_several_budgets_names_each():
    chosen, reason = choose([
        candidate("onnx_fp32", 0.03, 60, broken=["min_accuracy", "max_size_kb"]),
        candidate("onnx_int8", 0.02, 20, broken=["min_accuracy", "max_size_kb", "max_accuracy_drop"]),
    ])
    assert reason == (
        "onnx_fp32 breaks 2 budget(s) on validation; preferring latency: onnx_int8 breaks min_accuracy, max_size_kb, max_accuracy_drop "
        "(onnx_fp32 breaks min_accuracy, max_size_kb)"
    )


def test_a_wider_width_that_breaks_nothing_but_cannot_be_judged_says_so():
    rows = toy_widths(0.5)
    for row in rows:
        if row.width == 1.0:
            row.budgets["min_accuracy"] = {"value": None, "limit": 0.9, "passed": None}
            row.budgets["max_accuracy_drop"] = {"value": None, "limit": 1.0, "passed": None}
    chosen, reason = choose(rows)
    assert chosen.width == 0.75
    assert reason.startswith("width 0.75 is the widest that meets every budget (width 1 breaks nothing, cannot judge min_accuracy, max_accuracy_drop); ")


def test_files_timed_together_compare_round_by_round_not_by_the_spread_of_single_runs():
    """The quickstart's case, measured: INT8 17 % slower than FP32 in every one of 10 interleaved
    rounds, while single runs spread over half the median. The spread is how much one run varies,
    not how well the median is known: FP32 is faster, and ships."""
    fp32_rounds = [0.051, 0.050, 0.052, 0.051, 0.050, 0.051, 0.053, 0.050, 0.051, 0.052]
    int8 = candidate("onnx_int8", 0.0596, 21, noise=0.030, rounds=[r * 1.17 for r in fp32_rounds])
    fp32 = candidate("onnx_fp32", 0.0510, 38, noise=0.030, rounds=fp32_rounds)
    for order in ([int8, fp32], [fp32, int8]):
        chosen, reason = choose(order)
        assert chosen.artifact == "onnx_fp32" and "faster in 10 of 10 interleaved rounds" in reason
    apart = [candidate("onnx_int8", 0.0596, 21, noise=0.030), candidate("onnx_fp32", 0.0510, 38, noise=0.030)]
    assert choose(apart)[0].artifact == "onnx_int8", "timed apart, only the spread says how far apart the medians must be"


def rounds_where_a_wins(wins: int, by: float, n: int = 10) -> tuple[list[float], list[float]]:
    """Per-round medians of two files: `a` faster by the factor `by` in `wins` rounds, slower by it in the rest."""
    a = [0.1] * n
    b = [0.1 * by if i < wins else 0.1 / by for i in range(n)]
    return a, b


def shipped_in_either_order(a_rounds: list[float], b_rounds: list[float], a_kb: float, b_kb: float) -> str:
    """The file that ships between `a` and `b`; the same whichever is listed first."""
    a, b = candidate("a", 0.1, a_kb, rounds=a_rounds), candidate("b", 0.1, b_kb, rounds=b_rounds)
    shipped = {choose(order)[0].artifact for order in ([a, b], [b, a])}
    assert len(shipped) == 1, "the order the files are listed in must not decide"
    return shipped.pop()


@pytest.mark.parametrize("wins, expected", [(8, "a"), (7, "b")])
def test_the_faster_file_must_win_most_rounds(wins, expected):
    """8 of 10 rounds (`ROUND_WINS`) make a difference, 7 do not: then the smaller file (`b`) ships."""
    assert shipped_in_either_order(*rounds_where_a_wins(wins, by=1.2), a_kb=60, b_kb=20) == expected


@pytest.mark.parametrize("by, expected", [(1.031, "a"), (1.029, "b")])
def test_a_file_faster_in_every_round_by_less_than_the_tie_is_no_faster(by, expected):
    """Faster in all 10 rounds, by 3.1 % it is faster; by 2.9 %, inside `LATENCY_TIE`, it is not."""
    assert shipped_in_either_order(*rounds_where_a_wins(10, by=by), a_kb=60, b_kb=20) == expected


@pytest.mark.parametrize("by, expected", [(1.031, "b"), (1.029, "a")])
def test_the_slower_file_in_every_round_loses_beyond_the_tie(by, expected):
    """The same edge seen from the other file: `b` (larger here) faster in every round."""
    b_rounds, a_rounds = rounds_where_a_wins(10, by=by)
    assert shipped_in_either_order(a_rounds, b_rounds, a_kb=20, b_kb=60) == expected


def test_the_median_of_the_rounds_decides_not_one_round():
    """`a` faster in 8 rounds by a hair (1 %) and in 2 by half: most rounds, but no difference beyond the tie."""
    a, b = [0.1] * 10, [0.101] * 8 + [0.15] * 2
    assert choose([candidate("a", 0.1, 60, rounds=a), candidate("b", 0.1, 20, rounds=b)])[0].artifact == "b"


def test_files_with_rounds_of_different_counts_were_not_timed_together():
    """Rounds from two timings cannot be paired: the medians and their spread decide."""
    a = candidate("a", 0.100, 60, noise=0.001, rounds=[0.1] * 10)
    b = candidate("b", 0.150, 20, noise=0.001, rounds=[0.09] * 8)
    chosen, reason = choose([a, b])
    assert chosen.artifact == "a" and "+50 % speed (p50 0.1 vs 0.15 ms)" in reason and "rounds" not in reason


@pytest.mark.parametrize("fast, slow", [([1.0] * 10, [1.03] * 10), ([1.0] * 10, [1.2] * 7 + [1.0] * 3)],
                         ids=["a median ratio of exactly the tie", "7 rounds won, 3 level"])
def test_a_difference_at_the_edge_of_the_rule_is_no_difference(fast, slow):
    """Every round exactly 3 % apart (`LATENCY_TIE`, not beyond it), or 20 % apart in 7 rounds and
    level in 3 (a level round is won by neither: 7 wins, short of 8): the smaller, slower file ships,
    whichever of the two is listed first and whichever is faster."""
    assert shipped_in_either_order(fast, slow, a_kb=60, b_kb=20) == "b"
    assert shipped_in_either_order(slow, fast, a_kb=20, b_kb=60) == "a"


def test_the_reason_counts_the_rounds_the_file_won_not_those_it_tied():
    chosen, reason = choose([candidate("a", 1.0, 20, rounds=[1.0] * 10), candidate("b", 1.0, 60, rounds=[1.2] * 7 + [1.0] * 3)])
    assert chosen.artifact == "a" and "faster in 7 of 10 interleaved rounds" in reason
