"""`compress nms`: a detector's ONNX file with its post-processing in the graph (ONNX NonMaxSuppression)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.common import friendly_errors, setup_logging


@click.command("nms")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="the file to write (default MODEL with .nms.onnx)")
@click.option("--score-floor", type=click.FloatRange(0, 1, min_open=True, max_open=True), help="drop objects scored below this (default: 0.3, what an app shows; 0.05 to score mAP)")
@click.option("--iou", type=click.FloatRange(0, 1, min_open=True), help="suppress a box overlapping a better one of its class by more than this (default 0.6)")
@click.option("--max-per-class", type=click.IntRange(1), default=100, show_default=True, help="objects kept per class and image")
@click.option("--debug", is_flag=True)
@friendly_errors
def nms(model: str, out: str | None, score_floor: float | None, iou: float | None, max_per_class: int, debug: bool) -> None:
    """Append scores, a score floor and class-wise NonMaxSuppression to a detector's MODEL.onnx, so
    the runtime returns the kept objects (image, class, location; score; box) instead of raw outputs.
    The new file is checked against the numpy post-processing of the old one on random images."""
    import numpy as np

    from devices.on_device import detections
    from exporters.nms_parity import check_against_numpy
    from exporters.onnx_nms import append_nms
    from pipeline.core.errors import UserError
    from pipeline.external import input_shape

    setup_logging(quiet=False, debug=debug)
    source = Path(model)
    if not source.is_file():
        raise UserError(f"{source}: no such file")
    shape = input_shape(source)
    target = Path(out) if out else source.with_suffix(".nms.onnx")
    if target.resolve() == source.resolve():
        raise UserError(f"--out {target} is the model itself; name another file")
    floor = detections.SHOWN if score_floor is None else score_floor
    threshold = detections.NMS_IOU if iou is None else iou
    try:
        append_nms(source, target, floor, threshold, max_per_class)
    except ValueError as e:
        raise UserError(f"{e}; this command takes a detector's file, whose first output is [N, A, 5 + K]") from None
    try:
        images = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
        compared = check_against_numpy(source, target, images, floor, threshold, max_per_class)
    except ValueError as e:
        target.unlink()
        raise UserError(f"{e}: the file was removed (the numpy post-processing, the default, is unaffected)") from None
    click.echo(f"{target}: NMS in the graph (score floor {floor}, IoU {threshold}, at most {max_per_class} per class); "
               f"same objects as the numpy post-processing on 4 random images ({compared} objects)\n"
               f"outputs: detections_index [S, 3] (image, class, location), detections_score [S], detections_box [S, 4] (x1, y1, x2, y2 pixels)")
