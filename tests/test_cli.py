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
    listing = invoke("devices", "list").output.splitlines()
    assert listing[0].split()[:4] == ["name", "cpu", "threads", "int8"] and listing[0].endswith("description")
    assert [line.split()[0] for line in listing[1:]] == sorted(line.split()[0] for line in listing[1:]) and len(listing) == 8
    pi = next(line for line in listing if line.startswith("raspberry-pi-4 "))
    assert "cortex-a72" in pi and "4 of 4 cores" in pi and "x6 nominal" in pi and "onnxruntime, ncnn, executorch" in pi
    assert listing[0].index("runtimes") == pi.index("onnxruntime"), "columns line up under their header"
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


def test_the_runs_last_line_is_the_gates_verdict_and_gate_makes_it_the_exit_code(tmp_path, tiny_recipe, write_recipe, lenient_device):
    """A device that breaks a budget fails `compress run --gate` (exit 1, like `compress gate`); without
    --gate the run exits 0 but its last line says the gate fails and how to make CI fail on it."""
    tiny_recipe["stages"] = [{"train": {"epochs": 1, "lr": 0.01}}, {"export": {}}, {"validate": {"runs": 20, "warmup": 2}}]
    tiny_recipe["devices"] = [str(lenient_device), "raspberry-pi-4"]  # the Pi's 85 % accuracy floor: out of reach in one epoch
    recipe, out = str(write_recipe(tiny_recipe)), str(tmp_path / "out")
    plain = invoke("run", recipe, "--out", out, "--quiet")
    assert plain.exit_code == 0, plain.output
    last = plain.output.strip().splitlines()[-1]
    assert last.startswith("gate: FAIL: raspberry-pi-4 breaks min_accuracy") and "lenient" not in last
    assert last.endswith("(this command still exits 0: `compress run --gate` or `compress gate` fails CI on it)")
    gated = invoke("run", recipe, "--out", out, "--quiet", "--gate")  # resumes: nothing runs again
    assert gated.exit_code == 1 and gated.output.strip().splitlines()[-1] == last.split(" (this command")[0]
    tiny_recipe["devices"] = [str(lenient_device)]
    passing = invoke("run", str(write_recipe(tiny_recipe, "pass.yaml")), "--out", str(tmp_path / "pass"), "--quiet", "--gate")
    assert passing.exit_code == 0 and passing.output.strip().splitlines()[-1] == "gate: PASS: 1 device(s) judged"
