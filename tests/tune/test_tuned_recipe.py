"""What a tuned recipe carries of its trial: the file each device shipped (`validate.ship`), unless
the recipe forced its files itself."""

from pipeline.recipe import parse_recipe
from pipeline.tune.trial import with_shipped_files

FIGURES = {"host": {"artifact": "onnx_int8"}, "raspberry-pi-4": {"artifact": "onnx_fp32"}}


def recipe(validate: dict | None) -> dict:
    stages = [{"train": {"epochs": 1}}, {"export": {}}, {"quantize": {}}] + ([{"validate": validate}] if validate is not None else [])
    return {"name": "t", "data": {"source": "embedded"}, "model": {"name": "tiny_cnn"}, "stages": stages, "devices": ["host", "raspberry-pi-4"]}


def test_the_files_each_device_shipped_are_written_into_validate():
    raw = recipe({"runs": 20})
    pinned = with_shipped_files(raw, parse_recipe(raw), FIGURES)
    assert pinned["stages"][3] == {"validate": {"runs": 20, "ship": {"host": "onnx_int8", "raspberry-pi-4": "onnx_fp32"}}}
    assert "ship" not in raw["stages"][3]["validate"], "the trial's own recipe is not changed in place"
    parse_recipe(pinned)  # a valid recipe


def test_a_recipe_that_forces_its_files_or_judges_no_device_is_left_as_written():
    raw = recipe({"artifact": "onnx_int8"})
    assert with_shipped_files(raw, parse_recipe(raw), FIGURES) == raw
    raw = recipe(None)
    assert with_shipped_files(raw, parse_recipe(raw), {}) == raw
    raw = recipe({})
    assert with_shipped_files(raw, parse_recipe(raw), {}) == raw, "no figures: nothing was shipped"
