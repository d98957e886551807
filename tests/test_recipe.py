import json
from pathlib import Path

import pytest

from pipeline.core.errors import RecipeError
from pipeline.recipe import load_recipe, parse_recipe
from pipeline.recipe_schema import recipe_schema
from pipeline.stages.prune import PruneConfig


def error_of(raw) -> str:
    with pytest.raises(RecipeError) as e:
        parse_recipe(raw)
    return str(e.value)


def test_valid_recipe_is_typed(tiny_recipe):
    recipe = parse_recipe(tiny_recipe)
    assert [e.name for e in recipe.stages] == ["train", "prune", "export", "quantize", "validate"]
    assert isinstance(recipe.stages[1].config, PruneConfig)
    assert recipe.stages[1].config.target.keep_macs == 0.6
    assert len(recipe.sha256) == 64


def test_shipped_recipes_validate():
    paths = sorted(Path("recipes").glob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        assert load_recipe(path).stages


def test_a_method_the_quantize_backend_lacks_names_the_stage_and_what_it_supports(tiny_recipe):
    tiny_recipe["stages"][3]["quantize"] = {"backend": "neural-compressor", "method": "qat"}
    message = error_of(tiny_recipe)
    assert "stages.3.quantize" in message
    assert "method 'qat' is not available with backend 'neural-compressor'; it supports: static, accuracy_aware" in message


def test_unknown_key_names_path_and_allowed_fields(tiny_recipe):
    tiny_recipe["stages"][0]["train"]["epocs"] = 3
    message = error_of(tiny_recipe)
    assert "stages.0.train.epocs: unknown field" in message
    assert "epochs" in message and "optimizer" in message


def test_wrong_literal_lists_allowed_values(tiny_recipe):
    tiny_recipe["stages"][1]["prune"]["importance"] = "random"
    message = error_of(tiny_recipe)
    assert "stages.1.prune.importance" in message
    assert "'magnitude'" in message and "'taylor'" in message


def test_unknown_stage_lists_known_stages(tiny_recipe):
    tiny_recipe["stages"].append({"sparsify": {}})
    message = error_of(tiny_recipe)
    assert "stages.5: unknown stage 'sparsify'" in message
    assert "prune" in message and "quantize" in message


def test_all_errors_reported_at_once(tiny_recipe):
    tiny_recipe["seed"] = "zero"
    tiny_recipe["data"]["source"] = "imagenet"
    tiny_recipe["stages"][0]["train"]["lr"] = -1
    message = error_of(tiny_recipe)
    assert "seed" in message and "data.source" in message and "stages.0.train.lr" in message


def test_prune_target_needs_exactly_one(tiny_recipe):
    tiny_recipe["stages"][1]["prune"]["target"] = {"keep_macs": 0.5, "keep_params": 0.5}
    assert "exactly one of remove_channels, keep_macs, keep_params" in error_of(tiny_recipe)


def test_stage_order_is_checked(tiny_recipe):
    stages = tiny_recipe["stages"]
    tiny_recipe["stages"] = [stages[0], stages[3], stages[2]]  # quantize before export
    message = error_of(tiny_recipe)
    assert "stages.1.quantize: needs onnx_fp32" in message and "export" in message


def test_pruning_after_export_makes_the_export_stale(tiny_recipe):
    s = tiny_recipe["stages"]
    tiny_recipe["stages"] = [s[0], s[2], s[1], s[3]]  # train, export, prune, quantize
    assert "stages.3.quantize: needs onnx_fp32" in error_of(tiny_recipe)


def test_training_after_the_last_export_is_refused(tiny_recipe):
    s = tiny_recipe["stages"]
    tiny_recipe["stages"] = [s[0], s[2], {"train": {"epochs": 1}}]  # train, export, train: the file is not the final model
    message = error_of(tiny_recipe)
    assert "stages.2.train: changes the model after the last file was made (stages.1.export)" in message


def test_mistakes_that_combine_are_all_listed():
    """A missing prerequisite, then a stage whose own check names a capability, then a training after the export."""
    raw = {"name": "x", "model": {"name": "tiny_cnn"}, "stages": [{"quantize": {}}, {"self_distill": {}}, {"export": {"exits": ["head1"]}}, {"train": {}}]}
    message = error_of(raw)
    for expected in (
        "stages.0.quantize: needs onnx_fp32",
        "stages.1.self_distill: mode byot needs auxiliary heads",
        "stages.2.export: exits ['head1'] are auxiliary heads",
        "stages.3.train: changes the model after the last file was made",
    ):
        assert expected in message


def test_every_order_of_three_stages_is_a_list_of_problems_or_a_recipe():
    """Whatever the order, `recipe check` answers with problems it can name, never a crash."""
    import itertools

    from pipeline.stages.base import STAGES

    entries = [{name: {}} for name in STAGES.names()] + [{"export": {"exits": ["head1"]}}, {"self_distill": {"mode": "byot"}}]
    for combo in itertools.permutations(entries, 3):
        try:
            parse_recipe({"name": "x", "model": {"name": "tiny_cnn"}, "stages": list(combo)})
        except RecipeError as e:
            assert str(e).count("\n  - stages.") >= 1


def test_yaml_errors_are_recipe_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match=f"^{bad}: not valid YAML: "):
        load_recipe(bad)
    with pytest.raises(RecipeError, match=f"^recipe {tmp_path / 'missing.yaml'} does not exist$"):
        load_recipe(tmp_path / "missing.yaml")


def test_schema_offers_every_stage():
    schema = recipe_schema()
    json.dumps(schema)
    alternatives = schema["properties"]["stages"]["items"]["oneOf"]
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in alternatives}
    assert {"TrainEntry", "PruneEntry", "ExportEntry", "QuantizeEntry", "ValidateEntry"} <= names
    assert schema["$defs"]["PruneEntry"]["required"] == ["prune"]


@pytest.mark.parametrize(
    "stages, message",
    [
        ([{"self_distill": {}}], r"stages\.1\.self_distill: mode byot needs auxiliary heads.*put an aux_heads stage before it"),
        ([{"distill": {"teacher": "before:prune"}}], r"stages\.1\.distill: teacher 'before:prune': no 'prune' stage runs before this one \(stages before it: train\)"),
        ([{"export": {"exits": ["head1"]}}], r"stages\.1\.export: exits \['head1'\] are auxiliary heads: put an aux_heads stage before export"),
        ([{"aux_heads": {}}, {"nested": {}}], r"stages\.2\.nested: nested trains the network alone: put it before the stages that attach auxiliary heads"),
        ([{"nested": {}}, {"export": {}}, {"quantize": {"method": "qat"}}], r"stages\.3\.quantize: onnxruntime qat quantizes the torch model .* after nested, use backend onnxruntime"),
    ],
)
def test_prerequisites_of_training_stages_are_checked_before_running(tiny_recipe, stages, message):
    tiny_recipe["stages"] = [tiny_recipe["stages"][0], *stages]
    with pytest.raises(RecipeError, match=message):
        parse_recipe(tiny_recipe)


def test_pskd_needs_no_heads_and_teacher_stage_may_come_earlier(tiny_recipe):
    tiny_recipe["stages"] = [
        tiny_recipe["stages"][0],
        {"self_distill": {"mode": "pskd"}},
        tiny_recipe["stages"][1],
        {"distill": {"teacher": "before:prune"}},
    ]
    assert [s.name for s in parse_recipe(tiny_recipe).stages] == ["train", "self_distill", "prune", "distill"]


def test_unknown_zoo_model_is_a_recipe_error_listing_the_registry(tiny_recipe):
    tiny_recipe["model"] = {"name": "resnet99"}
    assert "model.name: unknown zoo model 'resnet99'; known: ds_cnn, mobilenetv2, resnet20, resnet8, shufflenetv2, tiny_cnn" in error_of(tiny_recipe)


def test_recipe_check_loads_every_device_profile(tiny_recipe, tmp_path):
    bad = tmp_path / "board.yaml"
    bad.write_text("name: board\ncpu: z80\n")
    tiny_recipe["devices"] = ["host", "pi9", str(bad)]
    message = error_of(tiny_recipe)
    assert "devices.1: unknown device 'pi9'; known:" in message
    assert "devices.2:" in message and "cpu: Input should be" in message and "cores: required field is missing" in message


def test_validate_ship_names_only_the_recipes_devices_by_their_profiles_names(tiny_recipe, lenient_device):
    tiny_recipe["devices"] = ["host", str(lenient_device)]  # a profile given by path is named by its profile: lenient
    tiny_recipe["stages"][-1]["validate"]["ship"] = {"lenient": "onnx_int8", "host": "onnx_fp32"}
    parse_recipe(tiny_recipe)
    tiny_recipe["stages"][-1]["validate"]["ship"] = {"raspberry-pi-4": "onnx_int8"}
    assert "stages.4.validate: ship: raspberry-pi-4 is not among this recipe's devices (host, lenient); name one of them or drop it" in error_of(tiny_recipe)


@pytest.mark.parametrize("runtimes, devices, message", [
    (["ncnn"], ["host"], r"stages\.1\.export: runtime ncnn is asked for but not installed: pip install -e '\.\[ncnn\]' \(or: compress recipe check RECIPE --install\)$"),
    ("auto", ["raspberry-pi-zero-2w"], r"runtime ncnn is asked for but not installed: .*\(runtimes: auto, and a device of the recipe runs it\)"),
])
def test_a_runtime_that_is_not_installed_is_refused_before_anything_runs(tiny_recipe, monkeypatch, runtimes, devices, message):
    monkeypatch.setattr("pipeline.core.extras.installed", lambda extra: extra != "ncnn")
    tiny_recipe["stages"] = [tiny_recipe["stages"][0], {"export": {"runtimes": runtimes}}]
    tiny_recipe["devices"] = devices
    with pytest.raises(RecipeError, match=message) as refused:
        parse_recipe(tiny_recipe)
    assert refused.value.missing_extras == ["ncnn"] and refused.value.only_missing_extras
    tiny_recipe["devices"] = ["intel-n100"]  # admits onnxruntime and openvino only: auto asks for no ncnn
    if runtimes == "auto":
        parse_recipe(tiny_recipe)


def test_an_unknown_runtime_is_refused_listing_the_known_ones(tiny_recipe, tmp_path):
    tiny_recipe["stages"] = [tiny_recipe["stages"][0], {"export": {"runtimes": ["tflite"]}}]
    assert "stages.1.export.runtimes" in error_of(tiny_recipe) and "'onnxruntime', 'openvino', 'ncnn' or 'executorch'" in error_of(tiny_recipe)
    board = tmp_path / "board.yaml"
    board.write_text(open("devices/host.yaml").read().replace("runtimes: [", "runtimes: [tensorrt, "))
    tiny_recipe["stages"] = [tiny_recipe["stages"][0]]
    tiny_recipe["devices"] = [str(board)]
    assert "runtimes.0: Input should be 'onnxruntime', 'openvino', 'ncnn' or 'executorch'" in error_of(tiny_recipe)


TINY = {"name": "x", "model": {"name": "tiny_cnn"}}


def test_stage_entries_that_are_not_one_stage_are_each_named_exactly():
    from pipeline.stages.base import STAGES

    message = error_of({**TINY, "stages": [{"sparsify": {}}, 5, {"train": {}, "export": {}}, "train"]})
    one_key = "each stage is a one-key mapping like `- train: {epochs: 5}`"
    assert message == (
        "recipe is not a valid recipe:\n"
        f"  - stages.0: unknown stage 'sparsify'; allowed: {', '.join(STAGES.names())}\n"
        f"  - stages.1: {one_key}\n"
        f"  - stages.2: {one_key}"
    )


def test_a_stage_given_by_name_alone_takes_its_defaults():
    recipe = parse_recipe({**TINY, "stages": ["train", "export"]})
    assert [e.name for e in recipe.stages] == ["train", "export"] and recipe.stages[0].config.epochs >= 1


def test_what_is_not_a_recipe_at_all_is_said_so():
    with pytest.raises(RecipeError) as caught:
        parse_recipe([1, 2])
    assert str(caught.value) == "recipe: a recipe is a YAML mapping with name, model, stages (got list)"


def test_header_mistakes_list_the_allowed_fields_and_stages_of_the_wrong_kind_are_not_read_as_stages():
    message = error_of({**TINY, "stages": ["train"], "epochs": 3})
    assert "  - epochs: unknown field; allowed: name, seed, accelerator, deterministic, data, model, stages, devices, task, metric" in message
    message = error_of({**TINY, "stages": "train"})
    assert message.startswith("recipe is not a valid recipe:\n  - stages: Input should be a valid list") and "unknown stage" not in message
    assert "  - stages: required field is missing" in error_of(TINY)


def test_load_recipe_names_the_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nmodel: {name: tiny_cnn}\nstages: [sparsify]\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path} is not a valid recipe:\n  - stages.0: unknown stage 'sparsify'")


def test_the_recipe_hash_is_its_content_whatever_the_key_order():
    import datetime

    one = parse_recipe({**TINY, "stages": ["train"], "seed": 1})
    same = parse_recipe({"seed": 1, "stages": ["train"], "model": {"name": "tiny_cnn"}, "name": "x"})
    other = parse_recipe({**TINY, "stages": ["train"], "seed": 2})
    assert one.sha256 == same.sha256 != other.sha256
    dated = parse_recipe({**TINY, "stages": ["train"], "model": {"name": "tiny_cnn", "kwargs": {"since": datetime.date(2026, 1, 1)}}})
    assert len(dated.sha256) == 64, "YAML dates and other non-JSON values are hashed by their text"


def test_a_missing_prerequisite_names_the_one_stage_that_makes_it():
    assert error_of({**TINY, "stages": ["train", "quantize"]}) == (
        "recipe is not a valid recipe:\n  - stages.1.quantize: needs onnx_fp32, which no earlier stage provides"
        " (or a later weight-changing stage made stale); put export before it"
    )


def test_a_broken_device_profile_is_indented_under_its_entry(tiny_recipe, tmp_path):
    bad = tmp_path / "board.yaml"
    bad.write_text("name: board\ncpu: z80\n")
    tiny_recipe["devices"] = [str(bad)]
    from pipeline.core.errors import DeviceProfileError
    from pipeline.deploy.profiles import load_profile

    with pytest.raises(DeviceProfileError) as profile:
        load_profile(str(bad))
    first, *rest = str(profile.value).splitlines()
    assert len(rest) >= 2
    assert error_of(tiny_recipe).endswith("\n".join([f"  - devices.0: {first}", *(f"    {line}" for line in rest)]))


def test_the_extras_a_recipe_lacks_are_listed_once_and_said_to_be_its_only_problem_or_not(tiny_recipe, monkeypatch):
    monkeypatch.setattr("pipeline.core.extras.installed", lambda extra: extra not in ("ncnn", "openvino", "neural-compressor"))
    tiny_recipe["stages"] = [
        tiny_recipe["stages"][0], {"export": {"runtimes": ["ncnn", "openvino"]}}, {"quantize": {"backend": "neural-compressor"}},
        {"export": {"runtimes": ["ncnn"]}},
    ]
    with pytest.raises(RecipeError) as refused:
        parse_recipe(tiny_recipe)
    assert refused.value.missing_extras == ["ncnn", "openvino", "neural-compressor"] and refused.value.only_missing_extras
    assert "stages.2.quantize: quantize.backend neural-compressor is asked for but not installed: pip install -e '.[neural-compressor]'" in str(refused.value)
    tiny_recipe["stages"].append({"quantize": {}})  # a second quantize after the last export: fine; one before any export is not
    tiny_recipe["stages"].insert(1, {"quantize": {}})
    with pytest.raises(RecipeError) as refused:
        parse_recipe(tiny_recipe)
    assert refused.value.missing_extras == ["ncnn", "openvino", "neural-compressor"] and not refused.value.only_missing_extras
    tiny_recipe["devices"] = ["pi9"]  # a problem of the header: the stages are not judged, no extra is named
    with pytest.raises(RecipeError) as refused:
        parse_recipe(tiny_recipe)
    assert refused.value.missing_extras == [] and refused.value.only_missing_extras is False
    tiny_recipe["devices"] = ["host"]
    monkeypatch.setattr("pipeline.core.extras.installed", lambda extra: True)
    tiny_recipe["stages"].pop(1)
    parse_recipe(tiny_recipe)


def test_a_recipe_says_whether_a_stage_may_leave_a_smaller_network_than_the_one_built(tiny_recipe):
    assert parse_recipe(tiny_recipe).removes_channels, "the tiny recipe prunes"
    without_prune = [s for s in tiny_recipe["stages"] if "prune" not in s]
    assert not parse_recipe({**tiny_recipe, "stages": without_prune}).removes_channels
    nested = {"nested": {"widths": [0.5, 1.0], "train": {"epochs": 1}}}
    assert parse_recipe({**tiny_recipe, "stages": [nested, *without_prune[1:]]}).removes_channels


def test_shipped_tune_specs_load_with_every_value_of_their_space():
    from pipeline.tune.study import load_spec

    paths = sorted(Path("recipes/tune").glob("*.yaml"))
    assert len(paths) >= 2
    for path in paths:
        recipe, tune = load_spec(path)
        assert tune.space and recipe["devices"]
