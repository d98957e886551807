"""The terminal's word on a device's choice: one line of reason and a short table."""

from pipeline.deploy.choice_summary import candidates_table, headline
from pipeline.deploy.variant_choice import Candidate, choose


def candidate(name, p50, size, broken=(), unjudged=(), width=1.0, accuracy=0.9):
    budgets = {"max_size_kb": {"passed": True}} | {b: {"passed": False} for b in broken} | {u: {"passed": None} for u in unjudged}
    return Candidate(name, size, p50, 0.001, budgets, width, "onnxruntime", accuracy)


def line(candidates, prefer="latency", forced=None):
    chosen, _ = choose(candidates, forced=forced, prefer=prefer)
    return headline(chosen, candidates, prefer, forced)


def test_a_file_that_meets_every_budget_is_compared_with_the_next_best_only():
    text = line([candidate("onnx_int8", 0.010, 20, accuracy=0.89), candidate("onnx_fp32", 0.020, 60), candidate("ncnn_fp32", 0.030, 60)])
    assert text == "onnx_int8 meets every budget on validation; preferring latency, over the next best, onnx_fp32: +100 % speed (p50 0.01 vs 0.02 ms), -1.00 points, -67 % size"


def test_when_the_next_best_breaks_more_that_is_the_reason():
    text = line([candidate("onnx_fp32", 0.02, 90, broken=["max_size_kb", "min_accuracy"]), candidate("onnx_int8", 0.04, 30, broken=["min_accuracy"])])
    assert text == "onnx_int8 breaks min_accuracy on validation; the next best, onnx_fp32, breaks more: max_size_kb, min_accuracy"
    text = line([candidate("onnx_fp32", 0.02, 90, unjudged=["min_accuracy"]), candidate("onnx_int8", 0.04, 30)])
    assert text == "onnx_int8 meets every budget on validation; the next best, onnx_fp32, cannot be judged on min_accuracy"


def test_when_every_file_breaks_as_much_the_line_says_the_preference_decided():
    text = line([candidate("onnx_fp32", 0.020, 60, broken=["max_accuracy_drop"]), candidate("onnx_int8", 0.010, 20, broken=["max_accuracy_drop"])])
    assert text.startswith("onnx_int8 breaks max_accuracy_drop on validation, as does the next best, onnx_fp32; preferring latency: +100 % speed")


def test_forced_single_and_widths():
    assert line([candidate("onnx_int8", 0.01, 20), candidate("onnx_fp32", 0.02, 60)], forced="onnx_fp32") == "onnx_fp32, forced by validate.artifact"
    assert line([candidate("onnx_fp32", 0.02, 60)]) == "onnx_fp32 meets every budget on validation; the only file of its width"
    widths = [candidate("onnx_fp32", 0.05, 60, broken=["max_latency_p90_ms"]), candidate("onnx_fp32@w0.5", 0.01, 20, width=0.5), candidate("onnx_int8@w0.5", 0.02, 10, width=0.5)]
    assert line(widths).startswith("width 0.5, the widest that meets every budget; onnx_fp32@w0.5 meets every budget on validation; preferring latency, over the next best, onnx_int8@w0.5")


def test_the_table_lists_the_chosen_file_first_then_by_speed_with_what_each_breaks():
    figures = lambda p50, acc, ok, broken=(): {  # noqa: E731
        "latency_ms": {"p50": p50, "noise": 0.001}, "val_accuracy": acc, "size_bytes": 2048, "passed_on_validation": ok,
        "budgets_on_validation": {b: {"passed": False} for b in broken},
    }
    rows = candidates_table("onnx_int8", {"onnx_fp32": figures(0.01, 0.9, False, ["max_size_kb"]), "ncnn_fp32": figures(0.03, None, None), "onnx_int8": figures(0.02, 0.89, True)})
    assert [r.split()[0] for r in rows] == ["file", "*", "onnx_fp32", "ncnn_fp32"]
    assert rows[1].split()[1:] == ["onnx_int8", "0.02", "0.001", "0.8900", "2.0", "PASS"]
    assert rows[2].endswith("FAIL (max_size_kb)") and "–" in rows[3] and rows[3].endswith("CANNOT JUDGE")


def test_the_table_names_the_recipe_metric():
    row = {"latency_ms": {"p50": 0.01, "noise": 0.001}, "val_accuracy": 0.61, "size_bytes": 2048, "passed_on_validation": True, "budgets_on_validation": {}}
    assert candidates_table("onnx_int8", {"onnx_int8": row}, "mAP")[0].split()[:6] == ["file", "p50", "ms", "noise", "ms", "val"]
    assert candidates_table("onnx_int8", {"onnx_int8": row}, "mAP")[0].split()[6] == "mAP"
    assert candidates_table("onnx_int8", {"onnx_int8": row})[0].split()[6] == "acc"
