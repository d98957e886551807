"""`validate` with a profile that names a board: every candidate file timed on the board (a real SSH
server on loopback), the choice and the gate reading those figures, the estimate kept beside them,
and a board that cannot be reached failing the stage with the way out."""

import copy
import json

from click.testing import CliRunner

from pipeline.cli import main
from tests.boards.conftest import free_port
from tests.conftest import finished_run_recipe

SLOW_ESTIMATE = {  # the host's timing scaled 1000x: every file's estimate breaks the 5 ms budget, the board's figure does not
    "runtimes": ["onnxruntime"], "latency_factor": 1000.0, "latency_factor_source": "nominal", "sources": ["a test's deliberately slow estimate"],
    "budgets": {"max_latency_p90_ms": 5.0, "min_accuracy": 0.05},
}


def run(recipe: dict, tmp_path, out):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    return CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--quiet"])


def recipe_for(device) -> dict:
    recipe = copy.deepcopy(finished_run_recipe())
    recipe["devices"] = [str(device)]
    return recipe


def test_validate_times_every_candidate_on_the_board_and_the_choice_and_gate_read_it(board_profile, tmp_path):
    device = board_profile("host", profile=SLOW_ESTIMATE)
    recipe, out = recipe_for(device), tmp_path / "run"
    done = run(recipe, tmp_path, out)
    assert done.exit_code == 0, done.output
    entry = json.loads((out / "report.json").read_text())["devices"]["host"]
    assert entry["latency_kind"] == "measured on board board" and entry["peak_memory_kind"] == "measured on board board"
    assert entry["latency_ms"]["p90"] < 5.0 < entry["latency_estimate_ms"]["p90"] and entry["estimate_kind"] == "estimated"
    assert entry["passed_on_validation"] and entry["passed"], "the board's figure meets the budget the estimate breaks"
    assert {c["latency_ms"]["p90"] < 5.0 for c in entry["choice"]["candidates"].values()} == {True}, "FP32 and INT8 both timed on the board"
    assert len(entry["choice"]["candidates"]) == 2 and entry["peak_memory_mb"] > 0
    assert CliRunner().invoke(main, ["gate", str(out)]).exit_code == 0
    assert CliRunner().invoke(main, ["report", str(out), "--runs", "20"]).exit_code == 0
    assert f"{entry['latency_ms']['p90']:.4g} (measured on board board; estimate {entry['latency_estimate_ms']['p90']:.4g})" in (out / "report.md").read_text()

    recipe["stages"][-1]["validate"]["on_boards"] = False  # the same run estimated from the host: only validate runs again
    assert run(recipe, tmp_path, out).exit_code == 0  # a run judges; the gate fails it
    entry = json.loads((out / "report.json").read_text())["devices"]["host"]
    assert entry["latency_kind"] == "estimated" and "latency_estimate_ms" not in entry and not entry["passed"]
    assert CliRunner().invoke(main, ["gate", str(out)]).exit_code == 1


def test_a_board_validate_cannot_reach_fails_the_stage_and_names_the_way_out(board_profile, tmp_path):
    device = board_profile("host", profile=SLOW_ESTIMATE, boards=[{"ssh": "nobody@127.0.0.1", "port": free_port()}])
    done = run(recipe_for(device), tmp_path, tmp_path / "run")
    assert done.exit_code != 0 and "unreachable" in done.output and "set `on_boards: false` in the validate stage" in done.output, done.output
    assert "Traceback" not in done.output


def test_bench_times_a_file_made_elsewhere_on_the_board_unless_asked_to_estimate(finished_run, board_profile, tmp_path):
    device, model = board_profile("host", profile=SLOW_ESTIMATE), finished_run / "02-export" / "model.onnx"
    on_board = CliRunner().invoke(main, ["bench", str(model), "--device", str(device), "--runs", "20", "--out", str(tmp_path / "board")])
    assert on_board.exit_code == 0, on_board.output
    entry = json.loads((tmp_path / "board" / "report.json").read_text())["devices"]["host"]
    assert entry["latency_kind"] == "measured on board board" and entry["latency_estimate_ms"]["p90"] > 5.0 > entry["latency_ms"]["p90"]
    estimated = CliRunner().invoke(main, ["bench", str(model), "--device", str(device), "--runs", "20", "--estimate", "--out", str(tmp_path / "est")])
    assert estimated.exit_code == 1 and "max_latency_p90_ms" in estimated.output, estimated.output
