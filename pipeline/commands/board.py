"""`compress board check/run`: a profile's real boards over SSH."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.commands.common import friendly_errors, setup_logging


@click.group()
def board() -> None:
    """Real boards of a device profile (its `boards:`), over SSH: check them, run a bundle on them."""


@board.command("check")
@click.argument("device")
@click.option("--debug", is_flag=True)
@friendly_errors
def board_check(device: str, debug: bool) -> None:
    """What each board of DEVICE (a profile name or .yaml path) has, and which of the profile's claims it contradicts.
    Exit 0 when none, 1 when a board contradicts its profile, 2 when a board cannot be reached."""
    from pipeline.boards.probe import check_boards

    lines, worst = check_boards(device)
    click.echo("\n".join(lines))
    sys.exit(worst)


@board.command("run")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--device", required=True, help="profile name or .yaml path; its `boards:` are used")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="where each board's results.json goes (default board-<device>/)")
@click.option("--artifact", help="default: the file validate chose for the device")
@click.option("--samples", type=click.IntRange(min=10), help="test samples to bundle (default: as many as fit in 2 MB, at most 1000)")
@click.option("--calibrate", is_flag=True, help="also write a calibrated copy of the profile from the first real board")
@click.option("--calibrated-out", type=click.Path(dir_okay=False), help="default: <device>.calibrated.yaml")
@click.option("--force", is_flag=True, help="replace the calibrated profile if it exists")
@click.option("--debug", is_flag=True)
@friendly_errors
def board_run(run_dir, device, out_dir, artifact, samples, calibrate, calibrated_out, force, debug) -> None:
    """Bundle RUN_DIR for DEVICE, run it on each of the profile's boards, fetch and judge the results.
    Exits like `compress gate`: 1 when a board's figures break a budget, 2 when nothing could be judged."""
    from pipeline.boards.board_run import calibrate_from, run_lines, run_on_boards

    setup_logging(quiet=False, debug=debug)
    runs = run_on_boards(Path(run_dir), device, Path(out_dir) if out_dir else None, artifact, samples)
    click.echo("\n".join(run_lines(runs)))
    if calibrate:
        click.echo(f"calibrated profile: {calibrate_from(runs, device, Path(run_dir), Path(calibrated_out) if calibrated_out else None, force)}")
    sys.exit(max(r.gate.exit_code for r in runs))
