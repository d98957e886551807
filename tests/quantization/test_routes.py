"""Each quantization route is described once (`pipeline/quantization/route.py`): the quantize
config's choices, its refusals and the nested-widths check are read from the routes."""

import pytest
from pydantic import ValidationError

from pipeline.quantization import route as routes
from pipeline.quantization.route import Route, register, route_for
from pipeline.stages.quantize import QuantizeConfig, width_route_problem


def test_the_six_routes_and_what_each_takes():
    assert list(routes.ROUTES) == [
        ("onnxruntime", "static"), ("onnxruntime", "dynamic"), ("onnxruntime", "accuracy_aware"), ("onnxruntime", "qat"),
        ("neural-compressor", "static"), ("neural-compressor", "accuracy_aware"),
    ]
    assert routes.calibrations() == ("minmax", "entropy", "percentile")
    assert route_for("neural-compressor", "static").calibrations == ("minmax", "entropy")
    assert [r.method for r in routes.ROUTES.values() if r.quantizes_file] == ["static", "dynamic", "accuracy_aware"]
    assert [r.method for r in routes.ROUTES.values() if not r.calibrated] == ["dynamic"]
    assert [r.method for r in routes.ROUTES.values() if r.trains] == ["qat"]


@pytest.mark.parametrize("fields, message", [
    ({"backend": "neural-compressor", "method": "qat"}, "method 'qat' is not available with backend 'neural-compressor'; it supports: static, accuracy_aware"),
    ({"backend": "neural-compressor", "calibration": "percentile"}, "calibration 'percentile' is not available with backend 'neural-compressor'; it supports: minmax, entropy"),
    ({"backend": "neural-compressor", "method": "accuracy_aware", "calibrations": ["minmax", "percentile"]}, "calibration 'percentile' is not available"),
    ({"backend": "neural-compressor", "format": "qoperator"}, "format 'qoperator' is not available with backend 'neural-compressor'; it exports QDQ only"),
])
def test_a_setting_a_route_does_not_take_is_refused_naming_what_it_does(fields, message):
    with pytest.raises(ValidationError, match=message):
        QuantizeConfig(**fields)


def test_the_calibrations_an_accuracy_aware_search_tries_are_the_routes_own():
    assert QuantizeConfig(method="accuracy_aware", calibration="entropy").calibrations_to_try() == ["entropy", "minmax", "percentile"]
    assert QuantizeConfig(backend="neural-compressor", method="accuracy_aware").calibrations_to_try() == ["minmax", "entropy"]


def test_only_routes_that_quantize_a_file_take_nested_widths():
    assert width_route_problem(QuantizeConfig(method="dynamic")) is None
    assert width_route_problem(QuantizeConfig(method="qat")) == (
        "onnxruntime qat quantizes the torch model (the full width), not each nested width's file: "
        "after nested, use backend onnxruntime with method static, dynamic or accuracy_aware"
    )


def test_a_route_registered_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register(Route("onnxruntime", "static", lambda job, ctx: ("", {}), ("minmax",)))
