"""`compress tune` and `compress tune-clean`: search a recipe's fields for each device's best recipe; free a finished study's disk."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.common import friendly_errors, setup_logging
from pipeline.core.errors import UserError


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False), required=False)
@click.option("--model", help="without SPEC: a zoo model or \"package.module:function\"; the default space is searched")
@click.option("--data", help="without SPEC: SOURCE[:PATH] (embedded, fashion-mnist[:DIR], npz:FILE, image_folder:DIR)")
@click.option("--device", "devices", multiple=True, help="without SPEC: a device to tune for (repeatable)")
@click.option("--max-macs", help="without SPEC: the model's MACs budget (8M, 8e6): prune to it and refuse any trial over it")
@click.option("--max-params", help="without SPEC: the model's parameter budget (14862, 15k): prune to it and refuse any trial over it")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="tune folder (default runs/<name>-tune)")
@click.option("--trials", type=click.IntRange(min=1), help="trials the study should hold, finished or stopped by the pruner (default: the spec's tune.trials)")
@click.option("--time", "time_limit", help="wall time for this invocation: 90s, 30m, 2h (default: the spec's tune.time)")
@click.option("--storage", help="a database URL shared by several workers, without its password (default: a SQLite file in the tune folder)")
@click.option("--storage-password-file", type=click.Path(dir_okay=False, exists=True), help="the storage's password (default: $COMPRESS_STORAGE_PASSWORD)")
@click.option("--heartbeat", type=click.FloatRange(min=1), default=10.0, show_default=True, help="seconds between a worker's heartbeats; a trial silent for 3 of them is failed and retried")
@click.option("--quiet", is_flag=True, help="warnings and the final table only")
@click.option("--debug", is_flag=True)
@friendly_errors
def tune(spec: str | None, model: str | None, data: str | None, devices: tuple[str, ...], max_macs: str | None, max_params: str | None,
         out_dir: str | None, trials: int | None,
         time_limit: str | None, storage: str | None, storage_password_file: str | None, heartbeat: float, quiet: bool, debug: bool) -> None:
    """Search SPEC's `tune.space` (recipe fields) for the best recipe per device, on validation figures;
    or, without SPEC, the default space for --model on --data for each --device.

    One line per finished trial; a killed tune resumes its study. Writes tuned-<device>.yaml (a plain
    recipe `compress run` reproduces), tune.json and tune.md into the tune folder."""
    from pipeline.tune.default_space import write_default_spec
    from pipeline.tune.study import run_study
    from pipeline.tune.tune_report import picks_table

    setup_logging(quiet, debug)
    if spec is None:
        spec, out_dir = write_default_spec(model, data, devices, trials, time_limit, out_dir, max_macs, max_params)
        click.echo(f"searching the default space; the spec: {spec}", err=True)
    elif model or data or devices or max_macs or max_params:
        raise UserError("give SPEC, or --model/--data/--device (and --max-macs/--max-params) for the default space, not both; "
                        "in a spec, a model budget is tune.limits with a prune target such as {max_macs: 8000000}")
    summary = run_study(Path(spec), Path(out_dir) if out_dir else None, trials, time_limit, storage,
                        Path(storage_password_file) if storage_password_file else None, heartbeat)
    click.echo(picks_table(summary))


@click.command("tune-clean")
@click.argument("tune_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--debug", is_flag=True)
@friendly_errors
def tune_clean(tune_dir: str, debug: bool) -> None:
    """Free the disk of a finished tune: its stage store and every trial folder no device was given.
    The study, its reports, the tuned recipes and the picked trials' run folders stay."""
    from pipeline.tune.cleaning import clean

    done = clean(Path(tune_dir))
    click.echo(f"freed {done['freed_bytes'] / 2**20:.1f} MiB: removed {len(done['removed'])} folder(s); kept trial(s) "
               f"{', '.join(map(str, done['kept_trials']))} (picked) and the study")
