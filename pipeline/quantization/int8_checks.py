"""The checks every INT8 file passes, whatever route made it and whichever runtime runs it.

Agreement: an INT8 file whose top-1 class differs from its FP32 file's on too many real test samples
is renamed `*.rejected` and refused, never shipped. Coverage: a QDQ file always *looks* quantized;
only the graph the runtime runs after its own optimisation shows which compute ops became INT8
kernels, and a graph that keeps most compute in FP32 is usually slower than FP32 (warned).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from devices.on_device.decisions import output_agreement
from exporters.parity import ParityError, reject

INT8_COMPUTE = {"QLinearConv", "QLinearMatMul", "QGemm", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}
FP32_COMPUTE = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose"}
MOSTLY_FP32 = 0.5  # below this share of compute ops in INT8, the file is warned as likely slower than FP32
NAMED = 8  # FP32 nodes named in a message


def top1_agreement(fp32_logits: np.ndarray, int8_logits: np.ndarray) -> float:
    """The share of samples on which both files decide the same: the same class, or for a
    detector the same decoded objects (`devices/on_device/decisions.py`)."""
    return output_agreement(fp32_logits, int8_logits)


def check_agreement(out: Path, fp32_logits: np.ndarray, int8_logits: np.ndarray, minimum: float, reference: str, advice: str) -> float:
    """The agreement of `out` with its FP32 `reference`; below `minimum`, `out` is renamed `.rejected` and refused."""
    agreement = top1_agreement(fp32_logits, int8_logits)
    if agreement < minimum:
        reject(out)
        raise ParityError(
            f"the INT8 file {out.name} agrees with {reference} on only {agreement:.4f} of {len(fp32_logits)} test samples "
            f"(minimum {minimum}); it was not shipped. {advice}"
        )
    return agreement


def coverage(nodes: list[tuple[str, str]]) -> dict:
    """INT8 and FP32 compute ops among `nodes` ((op type, name) of the optimised graph) and the FP32 ones by name."""
    ops = Counter(op for op, _ in nodes)
    int8 = sum(ops[op] for op in INT8_COMPUTE)
    fp32 = sum(ops[op] for op in FP32_COMPUTE)
    return {
        "int8_compute_ops": int8,
        "fp32_compute_ops": fp32,
        "int8_fraction": round(int8 / max(1, int8 + fp32), 4),
        "fp32_compute_nodes": [name for op, name in nodes if op in FP32_COMPUTE],
        "op_counts": dict(sorted(ops.items())),
    }


def coverage_note(figures: dict, hint: str = "") -> tuple[bool, str | None]:
    """(is it a warning, the sentence) about what stayed FP32; (False, None) when all compute is INT8."""
    total = figures["int8_compute_ops"] + figures["fp32_compute_ops"]
    names = figures["fp32_compute_nodes"]
    left = ", ".join(names[:NAMED]) + (" …" if len(names) > NAMED else "")
    if figures["int8_fraction"] < MOSTLY_FP32:
        return True, (
            f"only {figures['int8_compute_ops']} of {total} compute ops run in INT8 after onnxruntime's optimisation; FP32: {left}{hint}. "
            "A mostly-FP32 graph is usually slower than the FP32 model; validate measures both."
        )
    if figures["fp32_compute_ops"]:
        return False, f"{figures['fp32_compute_ops']} of {total} compute ops stay FP32: {left}"
    return False, None
