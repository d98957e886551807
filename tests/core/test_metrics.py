import json

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.errors import UserError
from pipeline.core.metrics import resolve, top1, top5
from pipeline.recipe import parse_recipe


def test_top1_and_top5():
    logits = np.array([[0.1, 0.9, 0, 0, 0, 0, 0], [5, 4, 3, 2, 1, 0, -1]], dtype=np.float32)
    labels = np.array([1, 6])
    assert top1(logits, labels) == 0.5 and top5(logits, labels) == 0.5
    assert top5(logits, np.array([0, 4])) == 1.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("top3", "unknown metric 'top3'; known: coco_map, coco_map50, top1, top5"),
        ("tests.core.user_metrics:missing", "metric: cannot load tests.core.user_metrics:missing"),
    ],
)
def test_unknown_metrics_are_recipe_errors(tiny_recipe, spec, message):
    tiny_recipe["metric"] = spec
    with pytest.raises(UserError, match=message):
        parse_recipe(tiny_recipe)


@pytest.mark.parametrize("name, message", [("out_of_range", "returned 3.0; it must return a number in 0..1"), ("not_a_number", "returned 'good'")])
def test_a_user_metric_must_return_a_score(name, message):
    with pytest.raises(UserError, match=message):
        resolve(f"tests.core.user_metrics:{name}")(np.zeros((2, 3)), np.array([0, 1]))


def test_a_user_metric_drives_the_gate(tmp_path, tiny_recipe, write_recipe, lenient_device):
    """The same model passes the lenient floor (0.2) on top-1 and fails it on its worst class's recall."""
    tiny_recipe["stages"] = [{"train": {"epochs": 2, "lr": 0.01}}, {"export": {}}, {"validate": {"runs": 20, "warmup": 2}}]
    tiny_recipe["devices"] = [str(lenient_device)]
    codes, accuracies = {}, {}
    for metric in ("top1", "tests.core.user_metrics:recall_floor"):
        tiny_recipe["metric"] = metric
        out = tmp_path / metric.replace(":", "_")
        assert CliRunner().invoke(main, ["run", str(write_recipe(tiny_recipe)), "--out", str(out), "--quiet"]).exit_code == 0
        report = json.loads((out / "report.json").read_text())
        assert report["recipe"]["metric"] == metric
        accuracies[metric] = report["devices"]["lenient"]["accuracy"]
        codes[metric] = CliRunner().invoke(main, ["gate", str(out)]).exit_code
    assert accuracies["tests.core.user_metrics:recall_floor"] < 0.2 < accuracies["top1"], accuracies
    assert codes == {"top1": 0, "tests.core.user_metrics:recall_floor": 1}
