"""`compress`: thin click commands over the library. They parse, call, print; the work lives elsewhere."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click

from exporters import ParityError
from pipeline.errors import UserError

log = logging.getLogger("compress")


def setup_logging(quiet: bool, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if debug else "%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


def friendly_errors(command):
    """User errors as one paragraph and exit 1; --debug shows the traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug") or kwargs.get("debug")
        try:
            return command(*args, **kwargs)
        except (UserError, ParityError, FileNotFoundError) as e:
            if debug:
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: finished stages are kept; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


@click.group()
@click.version_option(package_name="edge-compress")
def main() -> None:
    """Compress a PyTorch model for an edge device: train, prune, quantize, export, validate, gate."""


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="run folder (default runs/<recipe name>)")
@click.option("--fresh", is_flag=True, help="ignore finished stages and run everything again")
@click.option("--quiet", is_flag=True, help="warnings and the final table only; no progress bars")
@click.option("--debug", is_flag=True, help="verbose logs and full tracebacks")
@friendly_errors
def run(recipe: str, out_dir: str | None, fresh: bool, quiet: bool, debug: bool) -> None:
    """Run RECIPE (YAML); resumes after the last finished stage."""
    from pipeline.recipe import load_recipe
    from pipeline.runner import run_recipe

    setup_logging(quiet, debug)
    parsed = load_recipe(recipe)
    report = run_recipe(parsed, out_dir, fresh=fresh, quiet=quiet or debug)
    click.echo(summary_table(report))
    click.echo(f"\nreport: {Path(out_dir or Path('runs') / parsed.name) / 'report.json'}")


@main.group()
def recipe() -> None:
    """Check a recipe or print its JSON Schema."""


@recipe.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--debug", is_flag=True)
@friendly_errors
def recipe_check(file: str, debug: bool) -> None:
    """Validate FILE without running it."""
    from pipeline.recipe import load_recipe

    parsed = load_recipe(file)
    click.echo(f"{file}: valid recipe '{parsed.name}' with stages {' -> '.join(e.name for e in parsed.stages)}")


@recipe.command("schema")
def recipe_schema_cmd() -> None:
    """Print the recipe JSON Schema (for editor completion and validation)."""
    from pipeline.recipe import recipe_schema

    click.echo(json.dumps(recipe_schema(), indent=2))


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--device", help="judge only this device")
@click.option("--debug", is_flag=True)
def gate(run_dir: str, device: str | None, debug: bool) -> None:
    """Judge RUN_DIR's report against device budgets: exit 0 pass, 1 broken budget, 2 cannot judge."""
    from pipeline.gate import CANNOT_JUDGE, judge_report, read_report

    try:
        result = judge_report(read_report(Path(run_dir)), device)
    except (OSError, ValueError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(CANNOT_JUDGE)
    if result.rows:
        click.echo(f"{'device':<20} {'budget':<20} {'value':>12} {'limit':>12}  verdict")
        for r in result.rows:
            verdict = {True: "pass", False: "FAIL", None: "unknown"}[r.passed]
            click.echo(f"{r.device:<20} {r.budget:<20} {_fmt(r.value):>12} {_fmt(r.limit):>12}  {verdict}")
    for problem in result.problems:
        click.echo(f"cannot judge: {problem}", err=True)
    click.echo({0: "gate: PASS", 1: "gate: FAIL", 2: "gate: CANNOT JUDGE"}[result.exit_code])
    sys.exit(result.exit_code)


@main.group()
def devices() -> None:
    """List or show device profiles."""


@devices.command("list")
@friendly_errors
def devices_list() -> None:
    from pipeline.devices import known_profiles, load_profile

    for name in known_profiles():
        p = load_profile(name)
        click.echo(f"{p.name:<20} {p.cpu:<12} threads={p.threads}  x{p.latency_factor} ({p.latency_factor_source})  {p.description}")


@devices.command("show")
@click.argument("name")
@friendly_errors
def devices_show(name: str) -> None:
    """Show a profile by NAME or .yaml path."""
    import yaml

    from pipeline.devices import load_profile

    click.echo(yaml.safe_dump(load_profile(name).model_dump(), sort_keys=False))


def summary_table(report: dict) -> str:
    lines = [f"{'stage':<16} {'status':<8} {'seconds':>8} {'accuracy':>9} {'params':>9} {'MACs':>10} {'size KiB':>9}"]
    for s in report["stages"]:
        m = s["metrics"]
        lines.append(
            f"{s['folder']:<16} {s['status']:<8} {_fmt(s['seconds'], 1):>8} {_fmt(m.get('accuracy'), 4):>9} "
            f"{_fmt(m.get('params'), 0):>9} {_fmt(m.get('macs'), 0):>10} {_fmt(None if m.get('size_bytes') is None else m['size_bytes'] / 1024, 1):>9}"
        )
    if report["devices"]:
        lines.append("")
        lines.append(f"{'device':<20} {'artifact':<10} {'accuracy':>9} {'p90 ms':>9} {'latency':<10} {'size KiB':>9}  verdict")
        for name, d in report["devices"].items():
            failed = [b for b, r in d["budgets"].items() if r["passed"] is False]
            verdict = {True: "PASS", False: "FAIL " + ", ".join(failed), None: "CANNOT JUDGE"}[d["passed"]]
            lines.append(
                f"{name:<20} {d['artifact']:<10} {d['accuracy']:>9.4f} {d['latency_ms']['p90']:>9.3f} "
                f"{d['latency_kind']:<10} {d['size_bytes'] / 1024:>9.1f}  {verdict}"
            )
    return "\n".join(lines)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or digits == 0:
        return f"{int(value):,}"
    return f"{value:.{digits}f}"
