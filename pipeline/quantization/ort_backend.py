"""onnxruntime's quantizer over the exported FP32 file, so what is calibrated is exactly what ships.

`quant_pre_process` (shape inference and graph clean-up) runs first: without it onnxruntime leaves
ops between Q/DQ pairs in float. Defaults follow what was measured fastest on x86 and Arm
(`shared/notes/int8-routes.md`): QDQ, per-channel symmetric S8 weights, asymmetric U8 activations.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

CALIBRATION = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
FORMAT = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
# Compute ops whose quantization matters for speed and accuracy: the candidates for FP32 fallback.
QUANTIZABLE_COMPUTE = ("Conv", "Gemm", "MatMul", "ConvTranspose")


@dataclass(frozen=True)
class StaticSettings:
    calibration: str = "minmax"
    per_channel: bool = True
    quant_format: str = "qdq"
    activations: str = "asymmetric"
    reduce_range: bool = True  # 7-bit weights: see `QuantizeConfig.reduce_range`

    def describe(self) -> str:
        act = "S8 symmetric" if self.activations == "symmetric" else "U8"
        weights = ("per-channel" if self.per_channel else "per-tensor") + (" 7-bit" if self.reduce_range else "")
        return f"{self.quant_format.upper()}, {weights} S8 weights, {act} activations, {self.calibration} calibration"


class CalibrationReader(CalibrationDataReader):
    """Feeds calibration samples in batches of 32 and calls `tick(n)` after each."""

    def __init__(self, input_name: str, samples: np.ndarray, tick: Callable[[int], None] = lambda _n: None):
        self.input_name, self.samples, self.tick, self.position = input_name, samples, tick, 0

    def get_next(self):
        if self.position >= len(self.samples):
            return None
        batch = self.samples[self.position : self.position + 32]
        self.position += len(batch)
        self.tick(len(batch))
        return {self.input_name: batch}


def prepare(fp32: Path, out: Path) -> Path:
    """Shape inference and clean-up that the quantizer needs to quantize every op it can."""
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)
    return out


def compute_nodes(model_path: Path) -> list[str]:
    """Names of the nodes whose INT8 or FP32 choice matters (convs, matmuls), in graph order."""
    return [n.name for n in onnx.load(str(model_path)).graph.node if n.op_type in QUANTIZABLE_COMPUTE]


def beyond_compute(model_path: Path) -> list[str]:
    """Nodes that feed no conv or matmul: what a graph computes after its last compute layer (a
    detector's box decoding and its grid of points, which share one output tensor with the logits).
    They stay FP32: one INT8 scale over pixel coordinates and logits would cost the logits their
    precision, and their arithmetic is too cheap for INT8 to save anything. A classifier has none."""
    nodes = onnx.load(str(model_path)).graph.node
    producer = {output: node for node in nodes for output in node.output}
    feeding, todo = set(), [n for n in nodes if n.op_type in QUANTIZABLE_COMPUTE]
    while todo:
        node = todo.pop()
        if id(node) in feeding:
            continue
        feeding.add(id(node))
        todo += [producer[i] for i in node.input if i in producer]
    return [n.name for n in nodes if id(n) not in feeding and n.name]


def quantize_static_file(
    prepared: Path,
    out: Path,
    samples: np.ndarray,
    settings: StaticSettings,
    exclude: tuple[str, ...] = (),
    tick: Callable[[int], None] = lambda _n: None,
) -> Path:
    """Calibrate on `samples` and write the INT8 file; nodes in `exclude`, and those beyond the last
    compute layer (`beyond_compute`), stay FP32."""
    input_name = onnx.load(str(prepared)).graph.input[0].name
    exclude = (*exclude, *beyond_compute(prepared))
    symmetric = settings.activations == "symmetric"
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
        _quantize_static(prepared, out, input_name, samples, settings, symmetric, exclude, tick)
    return out


def _quantize_static(prepared, out, input_name, samples, settings, symmetric, exclude, tick) -> None:
    quantize_static(
        str(prepared),
        str(out),
        CalibrationReader(input_name, samples, tick),
        quant_format=FORMAT[settings.quant_format],
        per_channel=settings.per_channel,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CALIBRATION[settings.calibration],
        nodes_to_exclude=list(exclude),
        reduce_range=settings.reduce_range,
        extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
    )


def quantize_dynamic_file(prepared: Path, out: Path, per_channel: bool, reduce_range: bool = True) -> Path:
    """Linear layers with INT8 weights and activations quantized on the fly (no calibration).

    Meant for Linear/MatMul-heavy models. onnxruntime's dynamic quantizer knows MatMul but not Gemm
    (what torch exports for `nn.Linear`), so Gemms are rewritten as MatMul + Add first. Convs stay
    FP32: their dynamic form (ConvInteger) runs slower than float in onnxruntime.
    """
    model = onnx.load(str(prepared))
    gemms_as_matmuls(model)
    rewritten = out.with_suffix(".matmul.onnx")
    onnx.save(model, str(rewritten))
    try:
        quantize_dynamic(str(rewritten), str(out), per_channel=per_channel, reduce_range=reduce_range, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"])
    finally:
        rewritten.unlink(missing_ok=True)
    return out


def gemms_as_matmuls(model: onnx.ModelProto) -> None:
    """Rewrite each Gemm (alpha = beta = 1, no transposed input A, constant B) as MatMul + Add, in place."""
    from onnx import helper, numpy_helper

    initializers = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in initializers:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        if attrs.get("transB", 0):
            weight = weight.T
        name = f"{node.name or node.output[0]}_matmul_weight"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight), name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for n in model.graph.node for name in n.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
