import re

from click.testing import CliRunner

from pipeline.cli import main


def test_report_writes_markdown_and_a_self_contained_html_with_plots(finished_run, tmp_path):
    result = CliRunner().invoke(main, ["report", str(finished_run), "-o", str(tmp_path), "--runs", "20"])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report.md").read_text()
    for stage in ("01-train", "02-export", "03-quantize (INT8)"):
        assert f"| {stage} |" in markdown
    assert re.search(r"\| 04-validate( \(INT8\))? \|", markdown), "validate's row times the file most devices got, FP32 or INT8 by measurement"
    assert "p90 ms raspberry-pi-4 (estimated)" in markdown and "## Gate" in markdown
    assert "## Stage 03-quantize" in markdown and "| method | static |" in markdown
    assert "![accuracy_vs_latency.png](accuracy_vs_latency.png)" in markdown
    assert "## Every file each device could get (fastest first; validation chose, test judged)" in markdown
    assert re.search(r"\| raspberry-pi-4 \| onnx_(fp32|int8) \| yes \|", markdown), "the shipped file is marked among the candidates"
    assert (tmp_path / "accuracy_vs_latency.png").read_bytes().startswith(b"\x89PNG")
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)=['"](?!data:)""", page), "no external resources"
    assert "why this file" in page


def test_report_of_a_folder_without_a_run_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "no report at" in result.output and "compress run" in result.output


def test_stages_on_one_point_share_one_label_and_others_keep_theirs():
    from pipeline.reporting.report_document import _shared_labels

    points = [(0.05, 84.5, "01-train"), (0.048, 82.4, "02-prune"), (0.0485, 82.4, "03-export"), (0.20, 82.4, "04-quantize"), (0.048, 82.0, "05-validate")]
    assert _shared_labels(points, log_x=True) == [
        (0.05, 84.5, "01-train"), (0.048, 82.4, "02-prune, 03-export"), (0.20, 82.4, "04-quantize"), (0.048, 82.0, "05-validate"),
    ]
    assert _shared_labels([(100.0, 80.0, "a"), (102.0, 80.05, "b"), (110.0, 80.0, "c")], log_x=False) == [(100.0, 80.0, "a, b"), (110.0, 80.0, "c")]
