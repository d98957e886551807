"""`compress devices list/show/calibrate`: the device profiles."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.common import friendly_errors


@click.group()
def devices() -> None:
    """List, show or calibrate device profiles."""


@devices.command("list")
@friendly_errors
def devices_list() -> None:
    from pipeline.deploy.profiles import known_profiles, load_profile
    from pipeline.reporting.summary import profiles_table

    click.echo(profiles_table([load_profile(name) for name in known_profiles()]))


@devices.command("show")
@click.argument("name")
@friendly_errors
def devices_show(name: str) -> None:
    """Show a profile by NAME or .yaml path."""
    import yaml

    from pipeline.deploy.profiles import load_profile

    click.echo(yaml.safe_dump(load_profile(name).model_dump(), sort_keys=False))


@devices.command("calibrate")
@click.argument("name")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True), help="run folder holding the same model: host latency is measured here, now")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), help="default: <name>.calibrated.yaml (never a shipped profile)")
@click.option("--force", is_flag=True, help="replace OUT if it exists")
@click.option("--debug", is_flag=True)
@friendly_errors
def devices_calibrate(name: str, results: str, run_dir: str | None, out_path: str | None, force: bool, debug: bool) -> None:
    """Write a calibrated copy of profile NAME from on-device RESULTS (results.json)."""
    from pipeline.deploy.calibration import calibrated_profile, write_profile

    profile, figures = calibrated_profile(name, Path(results), Path(run_dir) if run_dir else None)
    out = write_profile(profile, Path(out_path or f"{profile.name}.calibrated.yaml"), force)
    click.echo(
        f"{out}: latency_factor {figures['previous_factor']} (nominal) -> {profile.latency_factor} (calibrated: "
        f"device p50 {figures['device_p50_ms']:.4g} ms / host p50 {figures['host_p50_ms']:.4g} ms)\n"
        f"use it by path: devices: [{out}]"
    )
