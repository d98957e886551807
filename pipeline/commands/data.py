"""`compress data scenes`: a detection data set written from images that install here."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.commands.common import friendly_errors


@click.group()
def data() -> None:
    """Make data sets."""


@data.command("scenes")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--source", default="embedded", show_default=True, help="where the items come from: embedded | fashion-mnist")
@click.option("--path", help="the source's folder (fashion-mnist), as data.path in a recipe")
@click.option("--train", "train_count", type=click.IntRange(1), default=2000, show_default=True, help="training scenes")
@click.option("--val", "val_count", type=click.IntRange(1), default=500, show_default=True, help="validation scenes")
@click.option("--test", "test_count", type=click.IntRange(1), default=500, show_default=True, help="test scenes")
@click.option("--canvas", type=click.IntRange(28), default=96, show_default=True, help="canvas side in pixels")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "layout", type=click.Choice(["coco", "yolo"]), default="coco", show_default=True,
              help="coco: <split>/instances.json; yolo: images/<split>, labels/<split>/*.txt, data.yaml")
@click.option("--force", is_flag=True, help="write into OUT even if it holds files")
@click.option("--debug", is_flag=True)
@friendly_errors
def data_scenes(out: str, source: str, path: str | None, train_count: int, val_count: int, test_count: int, canvas: int, seed: int, layout: str, force: bool, debug: bool) -> None:
    """Write Fashion-MNIST items composed on canvases (several scales, overlap, clutter) to OUT in COCO or YOLO format: train, val, test."""
    from pipeline.core.errors import UserError
    from pipeline.data import DataConfig
    from pipeline.data.registry import SOURCES, RawData
    from pipeline.data.scenes import write_scenes

    folder = Path(out)
    if folder.exists() and any(folder.iterdir()) and not force:
        raise UserError(f"{folder} already holds files; give an empty or new folder, or --force to write over it")
    raw = SOURCES.get(source)(DataConfig(source=source, path=path))
    if not isinstance(raw, RawData):
        raise UserError(f"--source {source} streams its images; scenes are composed from an array source: embedded or fashion-mnist")
    counts = {"train": train_count, "val": val_count, "test": test_count}
    written = write_scenes(folder, raw.x_train, raw.y_train, raw.x_test, raw.y_test, raw.class_names, counts, canvas, seed, layout=layout)
    click.echo(f"{folder}: " + ", ".join(f"{split} {counts[split]} images / {written[split]} objects" for split in counts)
               + f", {canvas}x{canvas} grey, from {raw.description}\nuse it: data: {{source: {layout}, path: {folder}}}")
