"""ExecuTorch export (`.pte`, XNNPACK delegate) with a parity check run in ExecuTorch's own runtime.

ExecuTorch is PyTorch's on-device runtime (Android, iOS, embedded Linux); XNNPACK is its CPU back
end for Arm and x86. The program is exported at batch 1, the shape a device app feeds. INT8 goes
through PT2E with the XNNPACK quantizer (per-channel symmetric weights, calibrated activations), the
route ExecuTorch documents, with what follows the last compute layer kept FP32 (`beyond_compute`); its parity is judged against the quantized model in PyTorch, whose
arithmetic the kernels implement (sample by sample: the exported graph is
specialised to batch 1), and its accuracy is measured in the runtime by whoever ships it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from devices.on_device.runtimes import open_runner, require
from exporters.parity import ExportResult, ExportUnsupported, check_parity, first_line, torch_outputs, write_sidecar
from exporters.runtime_exporter import RuntimeExporter


def export_executorch(
    module: nn.Module,
    path: Path,
    parity_inputs: torch.Tensor,
    metadata: dict[str, str] | None = None,
    *,
    int8_calibration: torch.Tensor | None = None,
    max_abs_diff: float = 1e-3,
    min_top1_agreement: float = 0.99,
) -> ExportResult:
    """Write `path` (.pte) lowered to XNNPACK, FP32, or INT8 when `int8_calibration` samples are given;
    run `parity_inputs` through it in ExecuTorch and compare with PyTorch (`exporters.parity`)."""
    require("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    module = module.eval().cpu()
    example = (parity_inputs[:1],)
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(module, example)
            reference = module
            if int8_calibration is not None:
                reference = quantize_pt2e(program.module(), int8_calibration)
                program = torch.export.export(reference, example)
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            ops = program_ops(edge.exported_program().graph_module)
            lowered = edge.to_executorch()
        except Exception as e:  # torch.export and the edge dialect raise many types, each naming the operator
            raise ExportUnsupported(f"executorch cannot export this model: {first_line(e)}") from e
    path.write_bytes(lowered.buffer)
    write_sidecar(path, metadata)
    runner = open_runner(path, "executorch", threads=1)
    expected = [np.concatenate(parts) for parts in zip(*(torch_outputs(reference, parity_inputs[i : i + 1]) for i in range(len(parity_inputs))))]
    result = check_parity(expected, runner(parity_inputs.numpy()), path, "executorch", max_abs_diff, min_top1_agreement)
    result.details = ops
    return result


def program_ops(graph_module) -> dict:
    """Operator counts of the lowered program: inside XNNPACK delegates (for an INT8 program, the
    quantize / dequantize pairs XNNPACK fuses into INT8 kernels) and left outside them (portable
    kernels, slower)."""
    outside = Counter(_op(n) for n in graph_module.graph.nodes if n.op == "call_function" and _op(n) not in ("executorch_call_delegate", "getitem"))
    inside = Counter()
    for child in graph_module.children():
        if hasattr(child, "original_module"):
            inside.update(_op(n) for n in child.original_module.graph.nodes if n.op == "call_function")
    return {"delegated_ops": dict(sorted(inside.items())), "portable_ops": dict(sorted(outside.items()))}


def _op(node) -> str:
    """`aten.convolution.default` -> `convolution`."""
    return getattr(node.target, "_opname", None) or getattr(node.target, "__name__", str(node.target))


COMPUTE_OPS = frozenset({"conv1d", "conv2d", "conv3d", "convolution", "linear", "matmul", "mm", "addmm", "bmm"})


def beyond_compute(graph) -> list:
    """The graph's operator nodes that feed no convolution or matrix product: what it computes after
    its last compute layer (a detector's box decoding and its grid of points, which end in one tensor
    with the class logits). The rule the onnxruntime route applies to ONNX nodes
    (`quantization/ort_backend.beyond_compute`), on a PT2E graph. A classifier has none."""
    nodes = [n for n in graph.nodes if n.op == "call_function"]
    feeding, todo = set(), [n for n in nodes if _op(n) in COMPUTE_OPS]
    while todo:
        node = todo.pop()
        if node not in feeding:
            feeding.add(node)
            todo += node.all_input_nodes
    return [n for n in nodes if n not in feeding]


def quantize_pt2e(graph_module: nn.Module, calibration: torch.Tensor, batch: int = 64) -> nn.Module:
    """PT2E static INT8 with ExecuTorch's XNNPACK quantizer, calibrated on `calibration`. Nodes beyond
    the last compute layer are left unannotated, so they run in FP32: XNNPACK's quantizer otherwise
    shares one INT8 scale along slices and concatenations, and a detector's output (pixel coordinates
    beside logits) lost 9 mAP points to it."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import Quantizer

    class ComputeOnly(Quantizer):
        def __init__(self, inner: Quantizer):
            super().__init__()
            self.inner = inner

        def transform_for_annotation(self, model):
            return self.inner.transform_for_annotation(model)

        def annotate(self, model):
            model = self.inner.annotate(model)
            for node in beyond_compute(model.graph):
                node.meta.pop("quantization_annotation", None)
            return model

        def validate(self, model) -> None:
            self.inner.validate(model)

    quantizer = ComputeOnly(XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True)))
    prepared = prepare_pt2e(graph_module, quantizer)
    with torch.no_grad():
        for i in range(0, len(calibration), batch):
            for sample in calibration[i : i + batch]:  # exported at batch 1
                prepared(sample.unsqueeze(0))
    return convert_pt2e(prepared)


def export_file(module: nn.Module, onnx_file: Path, path: Path, parity_inputs: torch.Tensor, metadata: dict[str, str], **settings) -> ExportResult:
    """The pipeline's call: ExecuTorch is made from the module itself, not from the ONNX file."""
    return export_executorch(module, path, parity_inputs, metadata, **settings)


EXPORTER = RuntimeExporter(
    "executorch", export_file, int8="PT2E with ExecuTorch's XNNPACK quantizer, calibrated on the quantize stage's samples",
)
