"""`compress`: thin click commands over the library. They parse, call, print; the work lives elsewhere.

The run, recipe, gate, validate, bench, bundle and report commands are here; the tune, board and
devices groups are in `pipeline/commands/`, with what every command shares (`common.py`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from pipeline.commands.board import board
from pipeline.commands.common import friendly_errors, log, setup_logging
from pipeline.commands.data import data
from pipeline.commands.devices import devices
from pipeline.commands.nms import nms
from pipeline.commands.tune import tune, tune_clean
from pipeline.reporting.summary import fmt, summary_table


@click.group()
@click.version_option(package_name="edge-compress")
def main() -> None:
    """Compress a PyTorch model for an edge device: train, prune, quantize, export, validate, gate."""


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="run folder (default runs/<recipe name>)")
@click.option("--fresh", is_flag=True, help="ignore finished stages and run everything again")
@click.option("--quiet", is_flag=True, help="warnings and the final table only; no progress bars")
@click.option("--nproc", type=click.IntRange(1, 1024), default=1, show_default=True, help="train in N processes on this machine (torchrun, DDP)")
@click.option("--gate", "gating", is_flag=True, help="exit like `compress gate` on the result: 1 when a device breaks a budget, 2 when one cannot be judged")
@click.option("--debug", is_flag=True, help="verbose logs and full tracebacks")
@friendly_errors
def run(recipe: str, out_dir: str | None, fresh: bool, quiet: bool, nproc: int, gating: bool, debug: bool) -> None:
    """Run RECIPE (YAML); resumes after the last finished stage. The last line is the gate's verdict."""
    from pipeline.core.distributed import launched
    from pipeline.recipe import load_recipe
    from pipeline.runner import run_recipe

    setup_logging(quiet, debug)
    parsed = load_recipe(recipe)  # checked once here, before any process starts
    if nproc > 1:
        from pipeline.launcher import launch, run_arguments

        out = Path(out_dir) if out_dir else Path("runs") / parsed.name
        launch(nproc, run_arguments(recipe, out_dir, fresh=fresh, quiet=quiet, debug=debug), out)  # rank 0 prints the table
        from pipeline.core.run_folder import RunFolder

        finished = RunFolder(out)
        if finished.report_file.is_file() or gating:  # --gate with no report: the gate cannot judge, which is an error
            print_verdict(finished.report(), gating)
        return
    if launched() and os.environ.get("RANK") != "0":
        for handler in log.handlers:
            handler.setLevel(logging.WARNING)  # progress and logs from rank 0 only; errors from every rank
    report = run_recipe(parsed, out_dir, fresh=fresh, quiet=quiet or debug)
    if not report:
        return
    click.echo(summary_table(report))
    click.echo(f"\nreport: {Path(out_dir or Path('runs') / parsed.name) / 'report.json'}")
    if not launched():  # under --nproc the launching process prints it, once all ranks are done
        print_verdict(report, gating)


def print_verdict(report: dict, gating: bool) -> None:
    """The gate's verdict as the run's last line; with `gating`, its exit code too."""
    if not report["devices"]:
        return
    from pipeline.deploy.gate import judge_report
    from pipeline.reporting.summary import verdict_line

    result = judge_report(report)
    click.echo(verdict_line(result, gating))
    if gating:
        sys.exit(result.exit_code)


@main.group()
def recipe() -> None:
    """Check a recipe or print its JSON Schema."""


@recipe.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--install", is_flag=True, help="pip-install the optional parts (runtimes, neural-compressor) the recipe asks for and lacks")
@click.option("--debug", is_flag=True)
@friendly_errors
def recipe_check(file: str, install: bool, debug: bool) -> None:
    """Validate FILE without running it."""
    from pipeline.core.errors import RecipeError
    from pipeline.recipe import load_recipe

    try:
        parsed = load_recipe(file)
    except RecipeError as e:
        if not (install and e.only_missing_extras):
            raise
        from pipeline.core import extras

        extras.install(e.missing_extras, Path(__file__).resolve().parents[1])
        parsed = load_recipe(file)
    click.echo(f"{file}: valid recipe '{parsed.name}' with stages {' -> '.join(e.name for e in parsed.stages)}")


@recipe.command("schema")
def recipe_schema_cmd() -> None:
    """Print the recipe JSON Schema (for editor completion and validation)."""
    from pipeline.recipe_schema import recipe_schema

    click.echo(json.dumps(recipe_schema(), indent=2))


@main.command()
@click.argument("source", metavar="RUN_DIR|RESULTS.json", type=click.Path())
@click.option("--device", help="judge only this device")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="also write JUnit XML: one test case per device and budget")
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False), help="also write a markdown table (e.g. $GITHUB_STEP_SUMMARY)")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="with results.json: refuse results whose model is not one of this run's files")
@click.option("--debug", is_flag=True)
def gate(source: str, device: str | None, junit_path: str | None, summary_path: str | None, run_dir: str | None, debug: bool) -> None:
    """Judge a run folder (or report.json), or on-device results.json, against device budgets.

    Exit 0 pass, 1 a budget broken, 2 cannot judge (missing report, unknown device, unmeasured figure).
    """
    from pipeline.deploy.gate import CANNOT_JUDGE, GateResult, judge_report, read_report
    from pipeline.deploy.gate_outputs import write_outputs

    try:
        document = read_report(Path(source))
        if run_dir is not None and document.get("model_sha256"):
            from pipeline.deploy.calibration import model_in_run

            model_in_run(Path(run_dir), document["model_sha256"])
        result = judge_report(document, device)
    except Exception as e:  # noqa: BLE001  whatever goes wrong, a gate that cannot judge must not pass
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        result = GateResult([], [str(e)])
        write_outputs(result, source, junit_path, summary_path)
        sys.exit(CANNOT_JUDGE)
    if result.rows:
        click.echo(f"{'device':<20} {'budget':<20} {'value':>12} {'limit':>12}  verdict")
        for r in result.rows:
            verdict = {True: "pass", False: "FAIL", None: "unknown"}[r.passed]
            click.echo(f"{r.device:<20} {r.budget:<20} {fmt(r.value):>12} {fmt(r.limit):>12}  {verdict}")
    for problem in result.problems:
        click.echo(f"cannot judge: {problem}", err=True)
    write_outputs(result, source, junit_path, summary_path)
    click.echo({0: "gate: PASS", 1: "gate: FAIL", 2: "gate: CANNOT JUDGE"}[result.exit_code])
    sys.exit(result.exit_code)


TASK_HELP = "classification | detection: what the model does (a detector returns [N, A, 5 + K]: its budgets are min_map / max_map_drop); default: what --data's labels say, else classification"
ESTIMATE_HELP = "estimate each device's latency from this host even where its profile names a board (default: time the file on the board)"


def _validate_model(model, devices, out, data, reference_accuracy, runs, metric: str | None = None, on_boards: bool = True, task: str | None = None):
    """`compress validate`; `data`: a `pipeline.external.DataSpec` or None."""
    from pipeline.deploy.gate import judge_report
    from pipeline.external import data_config, validate_file

    config = data_config(data) if data is not None else None
    out_dir = Path(out or Path("runs") / f"validate-{Path(model).stem}")
    report = validate_file(Path(model), list(devices), out_dir, config, reference_accuracy, runs=runs, metric=metric, on_boards=on_boards, task=task)
    click.echo(summary_table(report))
    result = judge_report(report)
    for problem in result.problems:
        click.echo(f"cannot judge: {problem}", err=True)
    if config is None:
        click.echo("(accuracy budgets need data: compress validate MODEL --data SOURCE[:PATH])", err=True)
    click.echo(f"\nreport: {out_dir / 'report.json'}   gate: {({0: 'PASS', 1: 'FAIL', 2: 'CANNOT JUDGE'})[result.exit_code]}")
    sys.exit(result.exit_code)


@main.command("validate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", "devices", multiple=True, required=True, help="profile name or .yaml path (repeatable)")
@click.option("--data", help="test data, SOURCE[:PATH]: embedded, fashion-mnist[:DIR], npz:FILE, image_folder:DIR, coco:DIR, yolo:DIR")
@click.option("--input-size", type=int, help="image_folder: resize the shorter side, centre-crop to this")
@click.option("--mean", help="per-channel mean the model expects (pixels 0..1), comma-separated; default: the file's metadata")
@click.option("--std", help="per-channel std, comma-separated")
@click.option("--test-subset", type=click.IntRange(min=10), help="judge on this many test images")
@click.option("--task", help=TASK_HELP)
@click.option("--reference-accuracy", type=click.FloatRange(0, 1), help="the float model's figure on the metric (a detector's mAP), for max_accuracy_drop / max_map_drop budgets")
@click.option("--metric", help='default: the task\'s (top1; a detector coco_map) | top5 | coco_map50 | "package.module:function(outputs, labels)"')
@click.option("--out", type=click.Path(file_okay=False), help="result folder (default runs/validate-<model>)")
@click.option("--runs", type=click.IntRange(min=10), default=200, show_default=True)
@click.option("--estimate", is_flag=True, help=ESTIMATE_HELP)
@click.option("--debug", is_flag=True)
@friendly_errors
def validate_cmd(model, devices, data, input_size, mean, std, test_subset, task, reference_accuracy, metric, out, runs, estimate, debug):
    """Judge MODEL.onnx, made anywhere, against device budgets: size, latency, memory, and accuracy
    with --data. Writes report.json (gate, bundle and report read it); exits like `compress gate`."""
    from pipeline.external import DataSpec

    setup_logging(quiet=False, debug=debug)
    spec = None if data is None else DataSpec(data, input_size, mean, std, test_subset)
    _validate_model(model, devices, out, spec, reference_accuracy, runs, metric, on_boards=not estimate, task=task)


@main.command("bench")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--device", "devices", multiple=True, required=True, help="profile name or .yaml path (repeatable)")
@click.option("--budgets", "which", type=click.Choice(["speed", "all"]), default="speed", show_default=True,
              help="speed: judge the budgets a file alone can meet (size, latency, memory) and say which were left out; all: every budget, "
              "so an accuracy budget is CANNOT JUDGE (exit 2) without data")
@click.option("--task", default="classification", show_default=True,
              help="classification | detection: which accuracy budgets --budgets all cannot judge without data; a detector's latency includes its post-processing either way")
@click.option("--out", type=click.Path(file_okay=False), help="result folder (default runs/validate-<model>)")
@click.option("--runs", type=click.IntRange(min=10), default=500, show_default=True)
@click.option("--estimate", is_flag=True, help=ESTIMATE_HELP)
@click.option("--debug", is_flag=True)
@friendly_errors
def bench_cmd(model, devices, which, task, out, runs, estimate, debug):
    """Time MODEL.onnx for each device without data: size, latency p50/p90/p99, peak memory; judged
    on the speed budgets (`--budgets all`: every budget). Exits like `compress gate`."""
    from devices.on_device.verdicts import SPEED_BUDGETS
    from pipeline.deploy.gate import judge_report
    from pipeline.external import validate_file
    from pipeline.reporting.summary import bench_table, verdict_line

    setup_logging(quiet=True, debug=debug)
    out_dir = Path(out or Path("runs") / f"validate-{Path(model).stem}")
    report = validate_file(Path(model), list(devices), out_dir, None, None, runs=runs, on_boards=not estimate, task=task)
    result = judge_report(report, only=SPEED_BUDGETS if which == "speed" else None)
    click.echo(bench_table(report, result))
    for problem in result.problems:
        click.echo(f"cannot judge: {problem}", err=True)
    if result.not_judged:
        click.echo(f"not judged without data: {', '.join(result.not_judged)} (compress validate MODEL --data SOURCE[:PATH] judges them)")
    click.echo(f"report: {out_dir / 'report.json'}")
    click.echo(verdict_line(result, gating=True))
    sys.exit(result.exit_code)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--device", required=True, help="profile name or .yaml path")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), help="default: bundle-<device>.zip")
@click.option("--artifact", help="default: the file validate chose for the device; or any file the run made (onnx_int8, ncnn_fp32@w0.5, …)")
@click.option("--samples", type=click.IntRange(min=10), help="test samples to include (default: as many as fit in 2 MB, at most 1000)")
@click.option("--debug", is_flag=True)
@friendly_errors
def bundle(run_dir: str, device: str, out_path: str | None, artifact: str | None, samples: int | None, debug: bool) -> None:
    """Pack RUN_DIR's model, test samples, budgets and the torch-free on-device script into a zip."""
    from pipeline.deploy.bundle import make_bundle

    out = Path(out_path or f"bundle-{Path(device).stem}.zip")
    manifest = make_bundle(Path(run_dir), device, out, artifact, samples)
    click.echo(
        f"{out}: {manifest['model']['artifact']} ({manifest['model']['size_bytes'] / 1024:.1f} KiB, sha256 {manifest['model']['sha256'][:16]}…), "
        f"{manifest['samples']['count']} test samples, budgets of {manifest['device']['name']}; {out.stat().st_size / 1024:.0f} KiB in all\n"
        f"on the device: unzip {out.name} && python3 validate_on_device.py .   (or pass the zip itself)"
    )


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), help="default: the run folder")
@click.option("--runs", type=click.IntRange(min=10), default=200, show_default=True, help="timed runs per stage and thread count")
@click.option("--debug", is_flag=True)
@friendly_errors
def report(run_dir: str, out_dir: str | None, runs: int, debug: bool) -> None:
    """Write RUN_DIR's report.md and self-contained report.html: stage tables, plots, gate verdicts."""
    from pipeline.reporting.report_document import write_run_document

    md, page = write_run_document(Path(run_dir), Path(out_dir) if out_dir else None, runs)
    click.echo(f"{md}\n{page}")


# the command groups kept in their own files (pipeline/commands/)
main.add_command(tune)
main.add_command(data)
main.add_command(tune_clean)
main.add_command(board)
main.add_command(devices)
main.add_command(nms)
