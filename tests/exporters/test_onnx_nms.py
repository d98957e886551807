"""`exporters/onnx_nms.py`: NonMaxSuppression appended to a detector's ONNX file keeps what the numpy
post-processing keeps, and the check that says so refuses a file that does not."""

import numpy as np
import onnx
import pytest
import torch

from devices.on_device import detections
from devices.on_device.runtimes import open_runner
from exporters import export_onnx
from exporters.nms_parity import check_against_numpy
from exporters.onnx_nms import NMS_OPSET, OUTPUTS, append_nms
from pipeline.models.detector import tiny_det
from tests.exporters.test_runtimes import small


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    """An untrained tiny_det whose prediction layer is drawn to score locations 0.12-0.28 with boxes of
    about 16 px on an 8 px grid: neighbours overlap by IoU ~0.32, so NMS at 0.3 suppresses and at 0.6 does not."""
    torch.manual_seed(0)
    model = tiny_det(width=0.25).eval()
    with torch.no_grad():
        model.predict.weight.normal_(0, 0.3)
        model.predict.bias.normal_(-1.5, 1.0)
        model.predict.bias[:4] = 0.5
    folder = tmp_path_factory.mktemp("det")
    export_onnx(model, folder / "det.onnx", torch.randn(4, 1, 32, 32))
    return folder / "det.onnx"


def images(n: int = 4) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 1, 32, 32)).astype(np.float32)


def test_the_graph_keeps_what_numpy_keeps(detector_file, tmp_path):
    target = append_nms(detector_file, tmp_path / "nms.onnx", score_floor=0.15, iou=0.3, max_per_class=100)
    model = onnx.load(str(target))
    assert [o.name for o in model.graph.output] == list(OUTPUTS)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= NMS_OPSET
    compared = check_against_numpy(detector_file, target, images(), 0.15, 0.3, 100)
    assert 4 * 40 < compared < 4 * 100  # NMS suppressed some of the 128 candidates per image, not all
    index, scores, boxes = open_runner(target)(images())
    found = detections.from_graph(index, scores, boxes, 4, most=100)
    raw = open_runner(detector_file)(images())[0]
    for image, got in enumerate(found):
        expected = detections.decode(raw[image], 0.15, 0.3, 100)
        assert len(got.scores) == len(expected.scores)
        assert np.all(np.diff(got.scores) <= 0), "best first"
        assert set(got.classes.tolist()) == set(expected.classes.tolist())
        assert np.allclose(np.sort(got.boxes, axis=0), np.sort(expected.boxes, axis=0), atol=1e-4)


@pytest.mark.parametrize("floor, iou", [(0.2, 0.3), (0.15, 0.6)])
def test_a_graph_made_with_other_settings_is_refused(detector_file, tmp_path, floor, iou):
    target = append_nms(detector_file, tmp_path / "nms.onnx", score_floor=0.15, iou=0.3, max_per_class=100)
    with pytest.raises(ValueError, match=r"nms.onnx: image 0: the graph's NMS kept \d+ object\(s\), numpy post-processing \d+, or other scores"):
        check_against_numpy(detector_file, target, images(), floor, iou, 100)


def test_a_classifier_is_refused(tmp_path):
    export_onnx(small(), tmp_path / "cls.onnx", torch.randn(4, 1, 12, 12))
    with pytest.raises(ValueError, match="its first output logits has 2 dimension"):
        append_nms(tmp_path / "cls.onnx", tmp_path / "x.onnx", 0.3, 0.6)
    assert not (tmp_path / "x.onnx").exists()


def test_the_cap_on_objects_is_checked_too(detector_file, tmp_path):
    """At most 20 per class in the graph and 20 per image after it, as numpy keeps them (about 50
    objects survive NMS per image here): both sides are held to the cap."""
    target = append_nms(detector_file, tmp_path / "nms.onnx", score_floor=0.15, iou=0.3, max_per_class=20)
    assert check_against_numpy(detector_file, target, images(), 0.15, 0.3, 20) == 4 * 20


def test_a_graph_that_scores_otherwise_is_refused(detector_file, tmp_path):
    """The same objects, each score 1 % lower: refused on the scores, before the boxes are compared."""
    from onnx import helper, numpy_helper

    target = append_nms(detector_file, tmp_path / "nms.onnx", score_floor=0.15, iou=0.3, max_per_class=100)
    model = onnx.load(str(target))
    kept = next(n for n in model.graph.node if n.name == "nms_kept_scores")
    kept.output[0] = "unscaled"
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.99, np.float32), "one_percent_less"))
    model.graph.node.append(helper.make_node("Mul", ["unscaled", "one_percent_less"], ["detections_score"]))
    onnx.save(model, str(target))
    with pytest.raises(ValueError, match=r"image 0: the graph's NMS kept \d+ object\(s\), numpy post-processing \d+, or other scores"):
        check_against_numpy(detector_file, target, images(), 0.15, 0.3, 100)


def test_a_graph_that_gathers_other_boxes_is_refused(detector_file, tmp_path):
    """The right number of objects and scores, but each box read from the wrong row (by class
    instead of location): the check compares classes and boxes too."""
    from onnx import numpy_helper

    target = append_nms(detector_file, tmp_path / "nms.onnx", score_floor=0.15, iou=0.3, max_per_class=100)
    model = onnx.load(str(target))
    index = next(i for i in model.graph.initializer if i.name == "nms_image_and_location")
    index.CopyFrom(numpy_helper.from_array(np.array([0, 1], np.int64), index.name))
    onnx.save(model, str(target))
    with pytest.raises(ValueError, match=r"nms.onnx: image 0: the graph's NMS kept other boxes or classes than numpy post-processing \(\d+ object"):
        check_against_numpy(detector_file, target, images(), 0.15, 0.3, 100)


def test_objects_tied_in_score_are_compared_by_score_only():
    """Where the cap cuts through equal scores, either file may keep either object; where two
    locations of a class share a score, NMS may keep either box. Those are left out of the box
    comparison; every other object needs its partner: same class, score and box."""
    from exporters.nms_parity import clear_of_ties, unmatched

    box = lambda x: [x, 0.0, x + 10, 10.0]  # noqa: E731
    per_class = np.full((8, 5), 0.01, np.float32)
    per_class[[0, 1, 2, 3, 4], [1, 2, 3, 0, 4]] = [0.9, 0.8, 0.5, 0.5, 0.5]  # each score at one location of its class
    one = detections.Detections(np.array([box(0), box(20), box(40), box(60)], np.float32), np.array([0.9, 0.8, 0.5, 0.5], np.float32), np.array([1, 2, 3, 0]))
    other = detections.Detections(np.array([box(20), box(0), box(80), box(90)], np.float32), np.array([0.8, 0.9, 0.5, 0.5], np.float32), np.array([2, 1, 4, 3]))
    assert clear_of_ties(one, per_class).tolist() == [True, True, False, False]
    assert unmatched(one, other, per_class) == 0
    moved = detections.Detections(other.boxes + np.array([[0, 0, 0, 0.01], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32), other.scores, other.classes)
    assert unmatched(one, moved, per_class) == 1  # one box 0.01 px off
    relabelled = detections.Detections(other.boxes, other.scores, np.array([2, 0, 4, 3]))
    assert unmatched(one, relabelled, per_class) == 1
    rescored = detections.Detections(other.boxes, other.scores + np.array([0, 2e-5, 0, 0], np.float32), other.classes)
    assert unmatched(one, rescored, per_class) == 1
    per_class[5, 2] = 0.8  # a second location of class 2 at the same score: which box NMS keeps is open
    assert clear_of_ties(one, per_class).tolist() == [True, False, False, False]
    per_class[5, 2] = 0.8 + 2e-6  # a score apart by more than float rounding is not a tie
    assert clear_of_ties(one, per_class).tolist() == [True, True, False, False]
    empty = detections.Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    assert unmatched(empty, one, per_class) == 0 and unmatched(one, empty, per_class) == 2
