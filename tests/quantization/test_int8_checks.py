"""The agreement refusal and the INT8 coverage count, at their edges, with the sentences a user reads."""

import numpy as np
import pytest

from exporters.parity import ParityError
from pipeline.quantization import int8_checks


def logits(classes: list[int]) -> np.ndarray:
    return np.eye(3)[classes]


def test_agreement_is_the_share_of_samples_given_the_same_class():
    assert int8_checks.top1_agreement(logits([1, 1, 2, 0]), logits([1, 1, 0, 0])) == 0.75


def test_a_file_at_the_agreement_floor_ships_and_one_below_is_renamed_and_refused(tmp_path):
    out = tmp_path / "model.int8.onnx"
    out.write_bytes(b"int8")
    fp32, int8 = logits([0, 1, 2, 0]), logits([0, 1, 0, 0])
    assert int8_checks.check_agreement(out, fp32, int8, 0.75, "its FP32 file model.onnx", "Try x.") == 0.75
    assert out.exists()
    with pytest.raises(ParityError) as caught:
        int8_checks.check_agreement(out, fp32, int8, 0.76, "its FP32 file model.onnx", "Try x.")
    assert str(caught.value) == (
        "the INT8 file model.int8.onnx agrees with its FP32 file model.onnx on only 0.7500 of 4 test samples (minimum 0.76); "
        "it was not shipped. Try x."
    )
    assert not out.exists() and (tmp_path / "model.int8.onnx.rejected").read_bytes() == b"int8"


def nodes(int8: int, fp32: int, other: int = 2) -> list[tuple[str, str]]:
    return [("QLinearConv", f"q{i}") for i in range(int8)] + [("Conv", f"conv{i}") for i in range(fp32)] + [("Relu", f"r{i}") for i in range(other)]


def test_coverage_counts_every_kind_of_compute_op_by_precision():
    every = [(op, op.lower()) for op in sorted(int8_checks.INT8_COMPUTE | int8_checks.FP32_COMPUTE)] + [("Relu", "relu"), ("QuantizeLinear", "q")]
    figures = int8_checks.coverage(every)
    assert figures["int8_compute_ops"] == 7 and figures["fp32_compute_ops"] == 7 and figures["int8_fraction"] == 0.5
    assert figures["fp32_compute_nodes"] == ["conv", "convtranspose", "fusedconv", "fusedgemm", "fusedmatmul", "gemm", "matmul"]
    assert figures["op_counts"] == dict(sorted({op: 1 for op, _ in every}.items()))
    assert int8_checks.coverage(nodes(1, 2))["int8_fraction"] == 0.3333
    assert int8_checks.coverage(nodes(1, 0))["int8_fraction"] == 1.0
    assert int8_checks.coverage([("Relu", "r")])["int8_fraction"] == 0.0, "no compute ops: nothing in INT8, no division by zero"


def test_a_mostly_fp32_graph_is_a_warning_that_names_the_fp32_nodes():
    warning, note = int8_checks.coverage_note(int8_checks.coverage(nodes(1, 3)), " (hint)")
    assert warning and note == (
        "only 1 of 4 compute ops run in INT8 after onnxruntime's optimisation; FP32: conv0, conv1, conv2 (hint). "
        "A mostly-FP32 graph is usually slower than the FP32 model; validate measures both."
    )


def test_the_hint_is_only_what_the_caller_gives():
    _, note = int8_checks.coverage_note(int8_checks.coverage(nodes(0, 1)))
    assert note.startswith("only 0 of 1 compute ops run in INT8 after onnxruntime's optimisation; FP32: conv0. A mostly-FP32")


def test_half_in_int8_is_a_note_naming_at_most_eight_fp32_nodes():
    warning, note = int8_checks.coverage_note(int8_checks.coverage(nodes(9, 9)))
    assert not warning and note == "9 of 18 compute ops stay FP32: conv0, conv1, conv2, conv3, conv4, conv5, conv6, conv7 …"
    assert int8_checks.coverage_note(int8_checks.coverage(nodes(8, 8))) == (False, "8 of 16 compute ops stay FP32: conv0, conv1, conv2, conv3, conv4, conv5, conv6, conv7")


def test_an_all_int8_graph_needs_no_word():
    assert int8_checks.coverage_note(int8_checks.coverage(nodes(4, 0))) == (False, None)
