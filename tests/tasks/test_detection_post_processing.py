"""The numpy post-processing a board and the host share, and the COCO mAP computed from it."""

from __future__ import annotations

import numpy as np
import pytest

from devices.on_device import detections
from devices.on_device.decisions import output_agreement
from pipeline.tasks.coco_map import coco_map, coco_map50

CLASSES = 2
LOCATIONS = 16
SURE, NEVER = 12.0, -12.0  # logits: probability ~1 and ~0


def raw_outputs(images: int, found: list[tuple[int, int, list[float], float]]) -> np.ndarray:
    """Raw detector outputs [N, A, 5 + K] holding exactly the given detections (image, class, box, score)."""
    raw = np.full((images, LOCATIONS, 5 + CLASSES), NEVER, dtype=np.float32)
    raw[:, :, :4] = [0, 0, 1, 1]
    used = [0] * images
    for image, cls, box, score in found:
        at = used[image]
        used[image] += 1
        logit = np.log(score**2 / (1 - score**2)) if score < 1 else SURE  # scores = sqrt(sigmoid(cls) * sigmoid(ctr)), ctr ~ 1
        raw[image, at, :4] = box
        raw[image, at, 4] = SURE
        raw[image, at, 5 + cls] = logit
    return raw


def targets(rows: list[list[list[float]]]) -> np.ndarray:
    most = max(len(r) for r in rows)
    out = np.full((len(rows), most, 5), -1.0, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def test_decode_applies_the_score_floor_and_keeps_the_best_first():
    raw = raw_outputs(1, [(0, 0, [10, 10, 30, 30], 0.9), (0, 1, [50, 50, 60, 60], 0.5), (0, 1, [70, 70, 80, 80], 0.04)])
    found = detections.decode(raw[0])
    assert found.classes.tolist() == [0, 1]
    assert found.scores[0] == pytest.approx(0.9, abs=1e-4) and found.scores[1] == pytest.approx(0.5, abs=1e-4)
    np.testing.assert_allclose(found.boxes[0], [10, 10, 30, 30])


def test_nms_suppresses_an_overlapping_box_of_the_same_class_only():
    box, shifted = [10, 10, 30, 30], [11, 11, 31, 31]  # IoU 0.82
    same = detections.decode(raw_outputs(1, [(0, 0, box, 0.9), (0, 0, shifted, 0.8)])[0])
    other = detections.decode(raw_outputs(1, [(0, 0, box, 0.9), (0, 1, shifted, 0.8)])[0])
    apart = detections.decode(raw_outputs(1, [(0, 0, box, 0.9), (0, 0, [40, 40, 60, 60], 0.8)])[0])
    assert len(same.scores) == 1 and len(other.scores) == 2 and len(apart.scores) == 2


def test_nms_keeps_at_most_the_limit():
    found = detections.decode(raw_outputs(1, [(0, 0, [4 * i, 0, 4 * i + 3, 3], 0.9) for i in range(LOCATIONS)])[0], max_detections=5)
    assert len(found.scores) == 5


def test_coco_map_on_a_hand_made_case():
    """Image 0: its object found exactly (AP 1 at every IoU). Image 1: its object found at IoU 0.58,
    a true positive at IoU thresholds 0.50 and 0.55 only, so class 1's AP@0.5:0.95 is 2/10.
    mAP@0.5:0.95 = (1 + 0.2) / 2 = 0.6; mAP@0.5 = 1."""
    truth = targets([[[0, 10, 10, 30, 30]], [[1, 20, 20, 40, 40]]])
    # IoU of [20,20,40,40] with [20,20,40,20 + 20/0.58]: 400 / (20 * 34.48) = 0.58
    found = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [20, 20, 40, 20 + 20 / 0.58], 0.9)])
    assert coco_map(found, truth) == pytest.approx(0.6, abs=1e-6)
    assert coco_map50(found, truth) == pytest.approx(1.0, abs=1e-6)


def test_coco_map_counts_a_wrong_class_and_a_miss_and_nothing_found_scores_zero():
    truth = targets([[[0, 10, 10, 30, 30], [1, 40, 40, 60, 60]]])
    wrong_class = raw_outputs(1, [(0, 1, [10, 10, 30, 30], 0.9)])
    one_of_two = raw_outputs(1, [(0, 0, [10, 10, 30, 30], 0.9)])
    assert coco_map(wrong_class, truth) == 0.0
    assert coco_map(one_of_two, truth) == pytest.approx(0.5, abs=1e-6)  # class 0 AP 1, class 1 AP 0
    assert coco_map(raw_outputs(1, []), truth) == 0.0


def test_agreement_compares_decoded_objects():
    a = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [40, 40, 60, 60], 0.8)])
    moved = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [52, 52, 72, 72], 0.8)])  # IoU 0.14: another place
    relabelled = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 0, [40, 40, 60, 60], 0.8)])
    near_the_line = raw_outputs(2, [(0, 0, [10, 10, 30, 30], detections.SHOWN + 0.01), (1, 1, [40, 40, 60, 60], detections.SHOWN - 0.01)])
    assert output_agreement(a, a) == 1.0
    assert output_agreement(a, moved) == pytest.approx(0.5)  # 2 of 4 shown detections found by the other file
    assert output_agreement(a, relabelled) == pytest.approx(0.5)
    assert output_agreement(a, near_the_line) == pytest.approx(3 / 3)  # the one under the line is still found, not a disagreement
    far_below = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [40, 40, 60, 60], detections.SHOWN / 2 - 0.02)])
    assert output_agreement(a, far_below) == pytest.approx(2 / 3)  # 3 shown (2 + 1), of which the one far under the line is missed


def test_agreement_of_classifier_logits_is_the_predicted_class():
    a = np.array([[2.0, 1.0], [0.0, 1.0]])
    assert output_agreement(a, np.array([[3.0, 0.0], [1.0, 0.0]])) == 0.5


def test_decisions_are_classes_or_padded_detections_and_score_as_the_metric_does():
    from devices.on_device import decisions

    logits = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    assert decisions.decisions(logits).tolist() == [0, 2] and decisions.decisions(logits).dtype == np.int64
    assert decisions.score(decisions.decisions(logits), np.array([0, 1])) == 0.5
    assert decisions.score(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)) == 0.0
    truth = targets([[[0, 10, 10, 30, 30]], [[1, 20, 20, 40, 40]]])
    raw = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [20, 20, 40, 20 + 20 / 0.58], 0.9)])
    decided = decisions.decisions(raw)
    assert decided.shape == (2, detections.MAX_DETECTIONS, 6)
    assert decided[0, 0].tolist() == pytest.approx([10, 10, 30, 30, 0.9, 0], abs=1e-4) and (decided[0, 1:, 5] == -1).all()
    assert decisions.score(decided, truth) == pytest.approx(coco_map(raw, truth))


def test_decisions_agree_as_the_raw_outputs_do():
    from devices.on_device import decisions

    a = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [40, 40, 60, 60], 0.8)])
    moved = raw_outputs(2, [(0, 0, [10, 10, 30, 30], 0.9), (1, 1, [52, 52, 72, 72], 0.8)])
    assert decisions.agreement(decisions.decisions(a), decisions.decisions(moved)) == output_agreement(a, moved) == pytest.approx(0.5)
    assert decisions.agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    assert decisions.agreement(np.zeros(0), np.zeros(0)) == 1.0
    assert output_agreement(np.zeros((2, 3, 4, 5)), np.ones((2, 3, 4, 5))) == 1.0  # no decision in it: parity rests on the difference
    assert output_agreement(np.zeros(4), np.ones(4)) == 1.0


def test_a_board_without_pycocotools_reports_no_map_rather_than_its_own(monkeypatch):
    import builtins

    from devices.on_device import decisions

    real_import = builtins.__import__

    def no_pycocotools(name, *args, **kwargs):
        if name.startswith("pycocotools"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pycocotools)
    decided = decisions.decisions(raw_outputs(1, [(0, 0, [10, 10, 30, 30], 0.9)]))
    assert decisions.score(decided, targets([[[0, 10, 10, 30, 30]]])) is None
    assert decisions.score(np.array([1]), np.array([1])) == 1.0


def test_a_detectors_timing_includes_its_post_processing_and_a_classifiers_does_not():
    from devices.on_device import measure

    calls = []

    def detector(x):
        return [raw_outputs(1, [(0, 0, [10, 10, 30, 30], 0.9), (0, 1, [40, 40, 60, 60], 0.2)])]  # 0.2: under what an app draws

    def classifier(x):
        calls.append(x)
        return [np.zeros((1, 3))]

    x = np.zeros((1, 1, 4, 4), np.float32)
    assert measure.with_post_processing(classifier, x) is classifier
    timed = measure.with_post_processing(detector, x)
    assert timed is not detector and timed(x).classes.tolist() == [0]
