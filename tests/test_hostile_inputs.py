"""Hostile and odd inputs through the command line: each is one paragraph naming the field, file or
value and the fix, a non-zero exit, no traceback, and nothing written that a later run would trust."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_paragraph(result, *expected):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    for text in expected:
        assert text in result.output, result.output


def train_only(recipe: dict, data: dict) -> dict:
    return {**recipe, "data": {**data, "batch_size": 64}, "stages": [{"train": {"epochs": 1, "lr": 0.01}}], "devices": []}


@pytest.mark.parametrize(
    "factory, expected",
    [
        ("float_label_late", "train item 197's label is 1.5; labels are int class indices 0..2"),
        ("label_out_of_range_late", "train item 197's label 7 is outside 0..2 (3 classes)"),
    ],
)
def test_a_bad_label_deep_in_a_users_dataset_stops_the_run_by_name(tmp_path, tiny_recipe, write_recipe, factory, expected):
    """Past the first items checked before training: every label is checked as it streams."""
    recipe = train_only(tiny_recipe, {"source": "dataset", "factory": f"tests.data.user_datasets:{factory}", "workers": 0, "val_fraction": 0.01})
    out = tmp_path / "run"
    result = invoke("run", write_recipe(recipe), "--out", out, "--quiet")
    one_paragraph(result, expected)
    assert not list(out.glob("01-train*/metrics.json")), "no finished stage from bad data"


def write_folder(root, classes=("cat", "dog", "owl"), per_class=6, size=12):
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", 2)):
        for k, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.clip(rng.normal(60 + 60 * k, 20, (size, size)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L").save(root / split / name / f"{i}.png")


@pytest.mark.parametrize(
    "damage, data, expected",
    [
        (lambda r: [(p.unlink(), p.symlink_to(r / "gone.png")) for p in (r / "train" / "owl").glob("*.png")], {}, "which does not exist"),
        (lambda r: (r / "train" / "emu").mkdir(), {}, "class folder"),
        (lambda r: None, {"input_size": 0}, "data.input_size"),
        (lambda r: None, {"input_size": [12, 12, 3]}, "data.input_size"),
        (lambda r: None, {"channels": 2}, "data.channels"),
    ],
)
def test_a_damaged_image_folder_is_one_paragraph(tmp_path, tiny_recipe, write_recipe, damage, data, expected):
    root = tmp_path / "images"
    write_folder(root)
    damage(root)
    recipe = train_only(tiny_recipe, {"source": "image_folder", "path": str(root), "workers": 0, **data})
    one_paragraph(invoke("run", write_recipe(recipe), "--out", tmp_path / "run", "--quiet"), expected)


def test_macos_companion_files_are_passed_over(tmp_path, tiny_recipe, write_recipe):
    root = tmp_path / "images"
    write_folder(root)
    for path in list(root.glob("*/*/*.png")):
        (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    recipe = train_only(tiny_recipe, {"source": "image_folder", "path": str(root), "workers": 0})
    result = invoke("run", write_recipe(recipe), "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
