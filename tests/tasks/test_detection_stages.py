"""Detection through every stage it takes, on a tiny scene set (64 training images): train, prune,
export, INT8, validate; and the recipe-time refusals of what detection does not take."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pipeline.core.errors import DataError, UserError
from pipeline.recipe import parse_recipe
from pipeline.runner import run_recipe
from pipeline.tasks.detection import check_detector
from tests.tasks.detection_data import tiny_scenes


def detection_recipe(path, stages=None) -> dict:
    return {
        "name": "tiny-det",
        "task": "detection",
        "accelerator": "cpu",
        "data": {"source": "coco", "path": str(path), "batch_size": 16, "workers": 0},
        "model": {"name": "tiny_det", "kwargs": {"width": 0.5}},
        "stages": stages or [
            {"train": {"epochs": 3, "lr": 0.01}},
            {"prune": {"target": {"keep_macs": 0.6}, "steps": 1, "finetune": {"epochs": 1, "lr": 0.005}}},
            {"export": {}},
            {"quantize": {"calibration_samples": 32, "min_top1_agreement": 0.5}},
            {"validate": {"runs": 20, "warmup": 2}},
        ],
        "devices": ["host"],
    }


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="module")
def finished(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny-det"
    report = run_recipe(parse_recipe(detection_recipe(scenes)), out, quiet=True)
    return out, report


def stage_metrics(out, name):
    return json.loads(next(out.glob(f"*-{name}/metrics.json")).read_text())


def test_every_stage_runs_and_scores_coco_map(finished):
    out, report = finished
    assert report["recipe"]["metric"] == "coco_map" and report["recipe"]["task"] == "detection"
    trained = stage_metrics(out, "train")
    assert [row["val_accuracy"] for row in trained["history"]][-1] > 0  # the detector found something on validation
    assert 0 <= trained["accuracy"] <= 1


def test_pruning_removes_channels_and_keeps_the_prediction_layer(finished):
    out, _ = finished
    pruned = stage_metrics(out, "prune")
    assert pruned["macs"] < 0.75 * pruned["before"]["macs"] and pruned["params"] < pruned["before"]["params"]
    session = ort.InferenceSession(str(next(out.glob("*-export/model.onnx"))))
    output = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 1, 64, 64), np.float32)})[0]
    assert output.shape == (1, 8 * 8, 5 + 10)  # every location: 4 box, centre-ness, 10 classes


def test_export_parity_compares_decoded_boxes(finished):
    out, _ = finished
    exported = stage_metrics(out, "export")["parity"]
    assert exported["max_abs_diff"] < 1e-3 and exported["top1_agreement"] == 1.0


def test_int8_keeps_the_box_decoding_in_fp32_and_agrees_with_fp32(finished):
    out, _ = finished
    quantized = stage_metrics(out, "quantize")
    assert quantized["top1_agreement_with_fp32"] >= 0.5
    graph = onnx.load(str(next(out.glob("*-quantize/model.int8.onnx")))).graph
    producer = {o: n for n in graph.node for o in n.output}
    last = producer[graph.output[0].name]
    assert last.op_type == "Concat"  # not a DequantizeLinear: the boxes and logits leave the graph in FP32
    assert all(producer[i].op_type != "DequantizeLinear" for i in last.input if i in producer)
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)


def test_validate_reads_map_of_each_file(finished):
    out, report = finished
    host = report["devices"]["host"]
    assert host["artifact"] in ("onnx_fp32", "onnx_int8")
    assert 0 <= host["accuracy"] <= 1
    assert "max_map_drop" in host["budgets"] and "min_accuracy" not in host["budgets"]  # a detector's budgets, not a classifier's
    assert host["budgets"]["max_map_drop"]["value"] == pytest.approx(host["accuracy_drop_points"], abs=1e-4)


def test_a_classification_source_under_a_detection_task_is_named(tmp_path):
    recipe = detection_recipe(tmp_path, [{"train": {"epochs": 1}}])
    recipe["data"] = {"source": "embedded", "train_subset": 100, "test_subset": 50}
    with pytest.raises(DataError, match="its labels are classes, but the task detection needs boxes; set task: classification"):
        run_recipe(parse_recipe(recipe), tmp_path / "run", quiet=True)


@pytest.mark.parametrize("stages, expected", [
    ([{"train": {"epochs": 1}}, {"prune": {"target": {"keep_macs": 0.5}, "importance": "taylor"}}], "importance: taylor reads class logits"),
    ([{"train": {"epochs": 1}}, {"distill": {"teacher": "before:train", "dual_head_weight": 1.0}}], "Dual-Head KD's auxiliary head scores classes"),
    ([{"train": {"epochs": 1}}, {"export": {}}, {"quantize": {"method": "qat"}}], "quantize.method qat trains with class labels"),
])
def test_what_reads_class_logits_is_refused_for_a_detector(scenes, tmp_path, stages, expected):
    with pytest.raises(Exception, match=expected):
        run_recipe(parse_recipe(detection_recipe(scenes, stages)), tmp_path / "run", quiet=True)


class NoStride(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(len(x), 4, 15)


class WrongShape(torch.nn.Module):
    stride = 8

    def forward(self, x):
        return torch.zeros(len(x), 10)


def test_the_detector_contract_names_the_fix():
    sample = torch.zeros(2, 1, 16, 16)
    with pytest.raises(UserError, match="integer attribute `stride`"):
        check_detector(NoStride(), sample, 10, "model.factory m:f")
    with pytest.raises(UserError, match=r"forward returns \[2, 10\], but a detector for 10 classes at stride 8 on 16x16 images must return \[2, 4, 15\]"):
        check_detector(WrongShape(), sample, 10, "model.factory m:f")


def test_the_board_script_decodes_and_scores_map_as_the_host_did(finished, tmp_path):
    """The bundle of a detection run, run by the torch-free script: the same decoded objects as the
    host (agreement 1.0 on the same machine) and the same COCO mAP on the bundled scenes."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from tests.devices.test_on_device import on_board

    out, report = finished
    bundle = tmp_path / "bundle.zip"
    made = CliRunner().invoke(main, ["bundle", str(out), "--device", "host", "-o", str(bundle)])
    assert made.exit_code == 0, made.output
    done = on_board(tmp_path, str(bundle), "--out", str(tmp_path / "results.json"))
    assert done.returncode in (0, 1), done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["agreement_with_host"] == 1.0
    assert results["accuracy"] == pytest.approx(results["expected"]["sample_accuracy"], abs=1e-5)
    assert results["samples"] == 24  # the whole test split: its mAP is the test figure validate judged
    assert results["expected"]["sample_accuracy"] == pytest.approx(report["devices"]["host"]["accuracy"], abs=1e-5)
    assert set(results["budgets"]) >= {"max_map_drop"} and "min_accuracy" not in results["budgets"]


def test_a_detector_distils_from_its_unpruned_self(scenes, tmp_path):
    """Pruning's recovery and the distill stage teach a detector from a teacher's dense outputs."""
    recipe = detection_recipe(scenes, [
        {"train": {"epochs": 2, "lr": 0.01}},
        {"prune": {"target": {"keep_macs": 0.6}, "steps": 1, "recovery": "distill", "finetune": {"epochs": 1, "lr": 0.005}}},
        {"distill": {"teacher": "before:prune", "train": {"epochs": 1, "lr": 0.002}, "feature_weight": 0.1}},
    ])
    out = tmp_path / "run"
    run_recipe(parse_recipe(recipe), out, quiet=True)
    distilled = stage_metrics(out, "distill")
    terms = distilled["history"][0]["terms"]
    assert {"cls", "box", "ctr", "kd_cls", "kd_box", "kd_ctr", "feature"} <= set(terms)
    assert all(np.isfinite(v) and v >= 0 for v in terms.values())
    assert distilled["teacher"]["params"] > distilled["params"]  # the unpruned model taught the pruned one


def test_the_teachers_terms_vanish_where_the_student_already_agrees():
    from types import SimpleNamespace

    from pipeline.tasks.detection_distillation import detection_distillation_terms

    torch.manual_seed(0)
    outputs = torch.cat([torch.tensor([8.0, 8, 24, 24]).expand(2, 64, 4), torch.randn(2, 64, 11)], dim=2)
    batch = SimpleNamespace(logits=outputs, y=torch.full((2, 1, 5), -1.0), x=torch.zeros(2, 1, 64, 64))
    same = detection_distillation_terms(8)(batch, outputs.clone(), 1.0, 2.0)
    assert same["kd_cls"].item() == pytest.approx(0.0, abs=1e-7) and same["kd_box"].item() == pytest.approx(0.0, abs=1e-6)
    other = detection_distillation_terms(8)(batch, outputs + torch.cat([torch.full((2, 64, 4), 5.0), torch.randn(2, 64, 11)], dim=2), 1.0, 2.0)
    assert other["kd_cls"] > 0 and other["kd_box"] > 0
    assert all(v.item() == 0.0 for k, v in detection_distillation_terms(8)(batch, outputs, 0.0, 2.0).items() if k.startswith("kd"))


def test_accuracy_aware_int8_judges_map_on_validation(finished, tmp_path):
    """The accuracy-aware route reads the recipe's metric: for a detector, mAP of each candidate INT8
    file on the validation scenes, within the budget in mAP points."""
    import shutil

    out, _ = finished
    copy = tmp_path / "run"
    shutil.copytree(out, copy)  # train, prune and export are reused: quantize and validate run again
    recipe = detection_recipe(copy.parent)
    recipe["data"]["path"] = json.loads((out / "recipe.json").read_text())["data"]["path"]
    recipe["stages"][3] = {"quantize": {"method": "accuracy_aware", "calibration_samples": 32, "min_top1_agreement": 0.5, "max_accuracy_drop": 1.0}}
    run_recipe(parse_recipe(recipe), copy, quiet=True)
    search = stage_metrics(copy, "quantize")["accuracy_aware"]
    fp32_val = stage_metrics(copy, "export")["val_accuracy"]
    assert search["fp32_val_accuracy"] == pytest.approx(fp32_val, abs=1e-4)  # the FP32 file's mAP, on validation
    assert search["trials"] and all(0 <= t["val_accuracy"] <= 1 for t in search["trials"])
    assert search["budget_met"] == (search["chosen"]["drop_points"] <= 1.0)


def test_validate_judges_a_detector_file_made_elsewhere_by_map(finished, scenes, tmp_path):
    """`compress validate MODEL.onnx --data coco:DIR`: the boxes in the data make it a detector's
    verdict: the same test mAP the run's validate read for that file, the detector's budgets, and a
    bundle the board script can check. A task the data cannot serve, or classes it does not have,
    is one paragraph."""
    from click.testing import CliRunner

    from pipeline.cli import main

    out, report = finished
    model = next(out.glob("*-export/model.onnx"))
    invoke = lambda *args: CliRunner().invoke(main, [str(a) for a in args])  # noqa: E731
    reference = stage_metrics(out, "validate")["variants"]["onnx_fp32"]["accuracy"]
    judged = invoke("validate", model, "--device", "host", "--data", f"coco:{scenes}", "--reference-accuracy", reference,
                    "--out", tmp_path / "judged", "--runs", "10")
    assert judged.exit_code in (0, 1), judged.output
    written = json.loads((tmp_path / "judged/report.json").read_text())
    host = written["devices"]["host"]
    assert written["recipe"]["task"] == "detection" and written["recipe"]["metric"] == "coco_map"
    assert host["accuracy"] == pytest.approx(reference, abs=1e-5)  # the same file on the same test scenes
    assert host["budgets"]["max_map_drop"]["value"] == pytest.approx(0.0, abs=1e-3) and "min_accuracy" not in host["budgets"]
    assert invoke("bundle", tmp_path / "judged", "--device", "host", "-o", tmp_path / "b.zip").exit_code == 0

    refused = invoke("validate", model, "--device", "host", "--data", f"coco:{scenes}", "--task", "classification", "--out", tmp_path / "o")
    assert refused.exit_code == 1 and "its labels are boxes, but the task classification needs classes; set task: detection" in refused.output
    other = invoke("validate", model, "--device", "host", "--data", "embedded", "--task", "detection", "--out", tmp_path / "o")
    assert other.exit_code == 1 and "its labels are classes, but the task detection needs boxes" in other.output


class ThreeClassDetector(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x, 8).flatten(2).transpose(1, 2).repeat(1, 1, 8)  # [N, 64, 8]: 5 + 3 classes


def test_validate_refuses_a_detector_for_other_classes(scenes, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    path = tmp_path / "three.onnx"
    torch.onnx.export(ThreeClassDetector(), torch.zeros(1, 1, 64, 64), str(path), input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
    refused = CliRunner().invoke(main, ["validate", str(path), "--device", "host", "--data", f"coco:{scenes}", "--mean", "0.2", "--std", "0.3",
                                        "--out", str(tmp_path / "o")])
    assert refused.exit_code == 1, refused.output
    assert "three.onnx gives 8 values per location (4 box, 1 centre-ness, one per class) (its first output is [1, 64, 8]), " \
           "but a detection model for the data's 10 classes" in refused.output and "gives 15" in refused.output


def test_the_report_and_the_summary_name_the_figure_map(finished, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.reporting.summary import summary_table

    out, report = finished
    made = CliRunner().invoke(main, ["report", str(out), "-o", str(tmp_path), "--runs", "10"])
    assert made.exit_code == 0, made.output
    markdown = (tmp_path / "report.md").read_text()
    assert "| stage | seconds | test mAP |" in markdown and "| device | file | val mAP | test mAP |" in markdown
    assert "acc |" not in markdown and "val mAP |" in markdown.split("## Pruning")[1]  # prune's rounds too
    assert summary_table(report).splitlines()[0].split()[3] == "mAP"
    log = (out / "run.log").read_text()
    epochs = [line for line in log.splitlines() if "train epoch " in line]
    assert len(epochs) == 3 and all(", val mAP " in line for line in epochs)  # the epoch lines too
    rounds = [line for line in log.splitlines() if "prune round " in line]
    assert rounds and all(", val mAP " in line for line in rounds)
    assert " val mAP " in log.split("validate host: ")[1].splitlines()[1]  # the choice table's header
    assert re.search(r"on test, once: \S+ mAP \d", log)


@pytest.mark.parametrize("stage, name", [("export", "model.onnx"), ("quantize", "model.int8.onnx")])
def test_nms_in_the_graph_finds_what_numpy_finds(finished, scenes, tmp_path, stage, name):
    """`compress nms`: ONNX NonMaxSuppression appended to the FP32 and the INT8 file keeps the same
    objects as the numpy post-processing on the test scenes, so both score the same mAP."""
    from click.testing import CliRunner

    from devices.on_device import coco_eval, detections
    from devices.on_device.runtimes import open_runner
    from exporters.onnx_nms import OUTPUTS
    from pipeline.cli import main
    from pipeline.data import DataConfig, load_data

    out, _ = finished
    source, target = next(out.glob(f"*-{stage}/{name}")), tmp_path / "with-nms.onnx"
    made = CliRunner().invoke(main, ["nms", str(source), "-o", str(target), "--score-floor", "0.05"])
    assert made.exit_code == 0, made.output
    assert [o.name for o in onnx.load(str(target)).graph.output] == list(OUTPUTS)
    recipe = json.loads((out / "recipe.json").read_text())
    x, targets = load_data(DataConfig.model_validate(recipe["data"]), 0).test.take(24)[:2]
    x = x.numpy()
    expected = detections.decode_batch(open_runner(source)(x)[0])
    found = detections.from_graph(*open_runner(target)(x), len(x))
    assert sum(len(d.scores) for d in expected) > 24  # something to compare
    for a, b in zip(expected, found):
        assert np.allclose(np.sort(a.scores), np.sort(b.scores), atol=1e-5)
    assert detections.agreement(expected, found) == 1.0
    assert coco_eval.stats(found, targets.numpy())[0] == pytest.approx(coco_eval.stats(expected, targets.numpy())[0], abs=2e-3)


def test_nms_refuses_a_classifier(finished_run, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    refused = CliRunner().invoke(main, ["nms", str(finished_run / "02-export/model.onnx"), "-o", str(tmp_path / "x.onnx")])
    assert refused.exit_code == 1 and "not a detector's 3; this command takes a detector's file" in refused.output
    assert not (tmp_path / "x.onnx").exists()
