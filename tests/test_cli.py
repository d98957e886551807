import json

from click.testing import CliRunner

from pipeline.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_recipe_check_accepts_shipped_recipe():
    result = invoke("recipe", "check", "recipes/quickstart.yaml")
    assert result.exit_code == 0 and "train -> prune -> export -> quantize -> validate" in result.output


def test_bad_recipe_is_one_paragraph_without_traceback(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["stages"][0]["train"]["optimizer"] = "lion"
    result = invoke("run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "stages.0.train.optimizer" in result.output and "'sgd' or 'adamw'" in result.output
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["stages"][0]["train"]["optimizer"] = "lion"
    result = invoke("run", str(write_recipe(tiny_recipe)), "--debug")
    assert result.exit_code != 0 and result.exc_info[0].__name__ == "RecipeError"


def test_missing_dataset_names_the_fix(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["data"] = {"source": "fashion-mnist", "path": str(tmp_path / "nowhere")}
    result = invoke("run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "apt-get install dataset-fashion-mnist" in result.output


def test_unknown_device_is_refused_before_training(tmp_path, tiny_recipe, write_recipe):
    tiny_recipe["devices"] = ["host", "pi9"]
    result = invoke("run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "unknown device 'pi9'" in result.output
    assert not list((tmp_path / "out").glob("01-*"))


def test_mismatched_checkpoint(tmp_path, tiny_recipe, write_recipe):
    import torch

    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    tiny_recipe["model"]["checkpoint"] = str(tmp_path / "other.pt")
    result = invoke("run", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and "does not match the model" in result.output


def test_schema_and_devices_commands():
    schema = json.loads(invoke("recipe", "schema").output)
    assert schema["title"] == "compress recipe"
    listing = invoke("devices", "list").output
    assert "raspberry-pi-4" in listing and "cortex-a55-phone" in listing
    assert "latency_factor: 6.0" in invoke("devices", "show", "raspberry-pi-4").output
    assert invoke("devices", "show", "nope").exit_code == 1


def test_the_example_ci_workflow_gates_devices_the_recipe_validates():
    import yaml

    workflow = yaml.safe_load(open("docs/ci-example.yml"))
    steps = workflow["jobs"]["compress"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    recipe = yaml.safe_load(open(workflow["jobs"]["compress"]["env"]["RECIPE"]))
    assert "compress gate" in script and "--junit" in script and "--summary" in script
    for device in ("raspberry-pi-4", "cortex-a55-phone"):
        assert device in script and device in recipe["devices"]
    assert "torch==2.13.0" in script
