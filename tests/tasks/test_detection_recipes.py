"""What a detection recipe may ask for, checked before anything trains (no training here: these run
under mutation testing)."""

from __future__ import annotations

import pytest

from pipeline.core.errors import RecipeError
from pipeline.recipe import parse_recipe


def recipe(stages, task="detection") -> dict:
    return {"name": "det", "task": task, "data": {"source": "coco", "path": "anywhere"}, "model": {"name": "tiny_det"},
            "stages": stages, "devices": ["host"]}


def problems(stages, task="detection") -> str:
    with pytest.raises(RecipeError) as error:
        parse_recipe(recipe(stages, task))
    return str(error.value)


@pytest.mark.parametrize("stages, expected", [
    ([{"train": {"epochs": 1}}, {"self_distill": {}}], "  - stages.1.self_distill: does not take task detection yet (it takes classification); leave it out of a detection recipe"),
    ([{"aux_heads": {}}], "  - stages.0.aux_heads: does not take task detection yet"),
    ([{"train": {"epochs": 1, "augment": {"mixup": 0.2}}}], "  - stages.0.train.augment.mixup: task detection cannot keep its labels true under mixup; set it to 0"),
    ([{"train": {"epochs": 1, "augment": {"cutmix": 1.0}}}], "  - stages.0.train.augment.cutmix: task detection"),
    ([{"prune": {"target": {"keep_macs": 0.5}, "finetune": {"augment": {"erasing": 0.5}}}}], "  - stages.0.prune.finetune.augment.erasing: task detection"),
])
def test_what_detection_does_not_take_is_named(stages, expected):
    assert expected in problems(stages)


def test_a_refused_stage_does_not_hide_the_problems_after_it():
    message = problems([{"self_distill": {}}, {"train": {"epochs": 1, "augment": {"mixup": 0.2}}}])
    assert "stages.0.self_distill: does not take task detection yet" in message and "stages.1.train.augment.mixup" in message


def test_every_problem_is_listed_at_once():
    message = problems([{"train": {"epochs": 1, "augment": {"mixup": 0.2, "erasing": 0.3}}}, {"nested": {}}])
    assert "stages.0.train.augment.erasing" in message and "stages.0.train.augment.mixup" in message
    assert "stages.1.nested: does not take task detection yet" in message


def test_what_detection_takes_passes_and_a_classifier_may_mix():
    stages = [{"train": {"epochs": 1, "augment": {"resized_crop": [0.5, 1.0], "color_jitter": 0.2}}},
              {"prune": {"target": {"keep_macs": 0.5}}}, {"export": {}}, {"quantize": {}}, {"validate": {}}]
    parsed = parse_recipe(recipe(stages))
    assert parsed.header.task == "detection" and parsed.header.metric == "coco_map"
    mixing = parse_recipe(recipe([{"train": {"epochs": 1, "augment": {"mixup": 0.2}}}, {"self_distill": {"mode": "pskd"}}], task="classification"))
    assert mixing.header.metric == "top1"


def test_a_given_metric_stays_and_an_unknown_task_is_named():
    given = recipe([{"train": {}}])
    given["metric"] = "coco_map50"
    assert parse_recipe(given).header.metric == "coco_map50"
    assert "  - task: unknown task 'segmentation'; allowed: classification, detection" in problems([{"train": {}}], task="segmentation")
