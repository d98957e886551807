"""A detector's ONNX file with its post-processing inside: ONNX's NonMaxSuppression after the head.

A detector's file returns raw outputs [N, A, 5 + K] (boxes decoded to pixels, a centre-ness logit,
class logits) and `devices/on_device/detections.py` turns them into objects in numpy. An app that
would rather not carry that code can have the same steps in the graph: scores as the geometric mean
of class and centre-ness probabilities, a score floor, class-wise NonMaxSuppression, all run by the
runtime. The file then returns three tensors over the S objects kept in the whole batch:

    detections_index [S, 3] int64: (image, class, location)
    detections_score [S] float32
    detections_box   [S, 4] float32: x1, y1, x2, y2 in input pixels

ONNX's operator keeps at most `max_per_class` objects per class and image; the app (or
`detections.from_graph`) keeps each image's best `MAX_DETECTIONS` of them. The nodes are appended
after the model's last node, so an INT8 file keeps them in FP32 like the rest of its tail. ONNX reads
boxes as (y1, x1, y2, x2); ours are (x1, y1, x2, y2), and IoU is the same either way. `nms_parity.py`
checks the file against the numpy post-processing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUTPUTS = ("detections_index", "detections_score", "detections_box")
NMS_OPSET = 11  # NonMaxSuppression with its current inputs; GatherND since 11


def append_nms(source: Path, target: Path, score_floor: float, iou: float, max_per_class: int = 100) -> Path:
    """Write `source` (a detector's file) with NMS appended as `target`; refuses a file whose first
    output is not [N, A, 5 + K]."""
    model = onnx.load(str(source))
    graph = model.graph
    raw = graph.output[0]
    dims = raw.type.tensor_type.shape.dim
    if len(dims) != 3:
        raise ValueError(f"{Path(source).name}: its first output {raw.name} has {len(dims)} dimension(s), not a detector's 3")
    prefix = "nms_"
    constants = {
        "box_end": np.array([4], np.int64), "ctr_end": np.array([5], np.int64), "zero": np.array([0], np.int64),
        "end": np.array([np.iinfo(np.int64).max], np.int64), "last_axis": np.array([2], np.int64),
        "max_per_class": np.array([max_per_class], np.int64), "iou": np.array([iou], np.float32),
        "floor": np.array([score_floor], np.float32), "image_and_location": np.array([0, 2], np.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(value, prefix + name) for name, value in constants.items())
    p = lambda name: prefix + name  # noqa: E731
    graph.node.extend([
        helper.make_node("Slice", [raw.name, p("zero"), p("box_end"), p("last_axis")], [p("boxes")], name=p("boxes")),
        helper.make_node("Slice", [raw.name, p("box_end"), p("ctr_end"), p("last_axis")], [p("centreness")], name=p("centreness")),
        helper.make_node("Slice", [raw.name, p("ctr_end"), p("end"), p("last_axis")], [p("classes")], name=p("classes")),
        helper.make_node("Sigmoid", [p("centreness")], [p("centreness_p")], name=p("centreness_p")),
        helper.make_node("Sigmoid", [p("classes")], [p("classes_p")], name=p("classes_p")),
        helper.make_node("Mul", [p("classes_p"), p("centreness_p")], [p("product")], name=p("product")),
        helper.make_node("Sqrt", [p("product")], [p("scores")], name=p("scores")),
        helper.make_node("Transpose", [p("scores")], [p("scores_by_class")], perm=[0, 2, 1], name=p("scores_by_class")),
        helper.make_node("NonMaxSuppression", [p("boxes"), p("scores_by_class"), p("max_per_class"), p("iou"), p("floor")],
                         [OUTPUTS[0]], center_point_box=0, name=p("suppression")),
        helper.make_node("GatherND", [p("scores_by_class"), OUTPUTS[0]], [OUTPUTS[1]], name=p("kept_scores")),
        helper.make_node("Gather", [OUTPUTS[0], p("image_and_location")], [p("box_index")], axis=1, name=p("box_index")),
        helper.make_node("GatherND", [p("boxes"), p("box_index")], [OUTPUTS[2]], name=p("kept_boxes")),
    ])
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info(OUTPUTS[0], TensorProto.INT64, ["kept", 3]),
        helper.make_tensor_value_info(OUTPUTS[1], TensorProto.FLOAT, ["kept"]),
        helper.make_tensor_value_info(OUTPUTS[2], TensorProto.FLOAT, ["kept", 4]),
    ])
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < NMS_OPSET:
            opset.version = NMS_OPSET
    meta = {m.key: m for m in model.metadata_props}
    note = f"score_floor={score_floor}, iou={iou}, max_per_class={max_per_class}"
    if "post_processing" in meta:
        meta["post_processing"].value = note
    else:
        model.metadata_props.add(key="post_processing", value=note)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return Path(target)

