"""The optional parts of the install: a recipe that asks for one that is missing names it, and
`compress recipe check --install` installs exactly those, then checks again."""

import yaml
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core import extras


def test_each_extra_is_known_by_a_module_and_onnxruntime_is_none(monkeypatch):
    assert extras.MODULE_OF == {"neural-compressor": "neural_compressor", "tune": "optuna", "openvino": "openvino", "ncnn": "ncnn", "executorch": "executorch"}
    assert extras.missing("ncnn", "runtime ncnn") == [] if extras.installed("ncnn") else extras.missing("ncnn", "runtime ncnn")
    monkeypatch.setattr(extras, "installed", lambda extra: False)
    (problem,) = extras.missing("openvino", "runtime openvino")
    assert problem.extra == "openvino"
    assert problem == "runtime openvino is asked for but not installed: pip install -e '.[openvino]' (or: compress recipe check RECIPE --install)"


def test_recipe_check_install_installs_what_the_recipe_lacks_then_checks_again(tmp_path, monkeypatch, tiny_recipe):
    present = {"neural-compressor"}
    installs = []
    monkeypatch.setattr(extras, "installed", lambda extra: extra in present)

    def install(wanted, project):
        installs.append(wanted)
        present.update(wanted)

    monkeypatch.setattr(extras, "install", install)
    tiny_recipe["stages"] = [tiny_recipe["stages"][0], {"export": {"runtimes": ["ncnn", "executorch"]}}]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    refused = CliRunner().invoke(main, ["recipe", "check", str(recipe)])
    assert refused.exit_code == 1 and "runtime ncnn is asked for but not installed" in refused.output and installs == []
    done = CliRunner().invoke(main, ["recipe", "check", str(recipe), "--install"])
    assert done.exit_code == 0, done.output
    assert installs == [["ncnn", "executorch"]] and "valid recipe 'tiny'" in done.output


def test_install_does_not_hide_a_problem_no_extra_fixes(tmp_path, monkeypatch, tiny_recipe):
    monkeypatch.setattr(extras, "installed", lambda extra: False)
    monkeypatch.setattr(extras, "install", lambda wanted, project: (_ for _ in ()).throw(AssertionError("nothing may be installed")))
    tiny_recipe["stages"] = [{"quantize": {}}, {"export": {"runtimes": ["ncnn"]}}]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    refused = CliRunner().invoke(main, ["recipe", "check", str(recipe), "--install"])
    assert refused.exit_code == 1 and "put export before it" in refused.output and "runtime ncnn" in refused.output


def test_outside_a_checkout_the_extras_are_named_for_pip(tmp_path):
    import pytest

    from pipeline.core.errors import UserError

    with pytest.raises(UserError, match=r"pip install 'edge-compress\[ncnn,openvino\]'"):
        extras.install(["ncnn", "openvino"], tmp_path)
