"""`compress validate` / `compress bench` on an ONNX file made elsewhere."""

import json

import onnx
from click.testing import CliRunner

from pipeline.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_validate_a_file_with_data_then_gate_and_bundle_it(finished_run, tmp_path):
    model = finished_run / "02-export/model.onnx"  # carries its preprocessing metadata
    out = tmp_path / "judged"
    result = invoke("validate", model, "--device", "host", "--device", "raspberry-pi-4", "--data", "embedded", "--test-subset", "200",
                    "--reference-accuracy", "0.6", "--out", out, "--runs", "20")
    report = json.loads((out / "report.json").read_text())
    assert set(report["devices"]) == {"host", "raspberry-pi-4"}
    host = report["devices"]["host"]
    assert host["artifact"] == "onnx_fp32" and 0.1 < host["accuracy"] <= 1 and host["budgets"]["min_accuracy"]["value"] == host["accuracy"]
    assert host["accuracy_drop_points"] == round((0.6 - host["accuracy"]) * 100, 4)
    assert result.exit_code in (0, 1) and result.exit_code == invoke("gate", out).exit_code, result.output
    assert invoke("bundle", out, "--device", "host", "-o", tmp_path / "b.zip", "--samples", "20").exit_code == 0
    kept = json.loads((out / "recipe.json").read_text())["data"]
    assert kept["mean"] and kept["std"], "the file's own normalisation, so the bundle's inputs are fed as the model expects"


def test_bench_judges_the_speed_budgets_and_says_which_it_left_out(finished_run, tmp_path):
    result = invoke("bench", finished_run / "03-quantize/model.int8.onnx", "--device", "host", "--device", "raspberry-pi-4", "--out", tmp_path / "b", "--runs", "20")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["device", "p50", "ms", "p90", "ms", "p99", "ms", "latency", "threads", "peak", "MB", "KiB", "gzip", "KiB", "verdict"]
    assert lines[1].startswith("host") and lines[1].endswith("PASS") and "measured" in lines[1]
    assert lines[2].startswith("raspberry-pi-4") and "estimated" in lines[2]
    assert "not judged without data: min_accuracy, max_accuracy_drop (compress validate MODEL --data" in result.output
    assert lines[-1] == "gate: PASS: 2 device(s) judged" and "stage" not in result.output
    report = json.loads((tmp_path / "b/report.json").read_text())
    assert report["devices"]["host"]["artifact"] == "onnx_int8" and report["devices"]["host"]["latency_ms"]["p90"] > 0


def test_bench_on_every_budget_cannot_judge_accuracy_without_data(finished_run, tmp_path):
    result = invoke("bench", finished_run / "03-quantize/model.int8.onnx", "--device", "host", "--budgets", "all", "--out", tmp_path / "b", "--runs", "20")
    assert result.exit_code == 2, result.output
    assert "min_accuracy has no measured value" in result.output and result.output.strip().endswith("CANNOT JUDGE: host: min_accuracy has no measured value; host: max_accuracy_drop has no measured value")


def test_a_file_without_preprocessing_needs_mean_and_std(finished_run, tmp_path):
    bare = onnx.load(str(finished_run / "02-export/model.onnx"))
    del bare.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(bare, str(path))
    refused = invoke("validate", path, "--device", "host", "--data", "embedded", "--out", tmp_path / "o")
    assert refused.exit_code == 1 and "give --mean and --std" in refused.output
    given = invoke("validate", path, "--device", "host", "--data", "embedded", "--mean", "0.29", "--std", "0.35",
                   "--test-subset", "100", "--out", tmp_path / "o", "--runs", "20")
    assert given.exit_code in (0, 1, 2) and json.loads((tmp_path / "o/report.json").read_text())["devices"]["host"]["accuracy"] > 0.1


def test_not_an_onnx_file_is_one_paragraph(tmp_path):
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"not a model")
    result = invoke("validate", junk, "--device", "host", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "is not a valid ONNX model" in result.output and "Traceback" not in result.output
    shape = invoke("validate", tmp_path / "missing.onnx", "--device", "host")
    assert shape.exit_code == 1 and "no such file" in shape.output


def plain_export(tmp_path, classes: int = 10, batch: int = 1, name: str = "plain.onnx"):
    """What most users hand in: `torch.onnx.export` with no dynamic_axes, so the batch is fixed."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes)).eval()
    path = tmp_path / name
    torch.onnx.export(model, torch.zeros(batch, 1, 28, 28), str(path), dynamo=False)
    return path


def test_a_file_with_its_batch_fixed_at_one_is_fed_one_sample_at_a_time(tmp_path):
    path = plain_export(tmp_path)
    result = invoke("validate", path, "--device", "host", "--data", "embedded", "--mean", "0.29", "--std", "0.35",
                    "--test-subset", "50", "--out", tmp_path / "o", "--runs", "20")
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    assert 0 <= json.loads((tmp_path / "o/report.json").read_text())["devices"]["host"]["accuracy"] <= 1


def test_a_file_with_a_larger_fixed_batch_or_other_classes_is_refused(tmp_path):
    batch4 = plain_export(tmp_path, batch=4, name="batch4.onnx")
    refused = invoke("validate", batch4, "--device", "host", "--data", "embedded", "--mean", "0.29", "--std", "0.35", "--out", tmp_path / "o")
    assert refused.exit_code == 1 and "has its batch fixed at 4" in refused.output and "dynamic_axes" in refused.output
    five = plain_export(tmp_path, classes=5, name="five.onnx")
    refused = invoke("validate", five, "--device", "host", "--data", "embedded", "--mean", "0.29", "--std", "0.35", "--out", tmp_path / "p")
    assert refused.exit_code == 1 and "gives 5 class score(s) per image" in refused.output and "a classification model for the data's 10 classes" in refused.output
    assert "Traceback" not in refused.output


def test_an_unknown_task_is_refused_before_anything_is_written(tmp_path):
    refused = invoke("validate", tmp_path / "m.onnx", "--device", "host", "--task", "segmentation", "--out", tmp_path / "o")
    assert refused.exit_code == 1 and "unknown task 'segmentation'; known: classification, detection" in refused.output
    assert not (tmp_path / "o").exists()
