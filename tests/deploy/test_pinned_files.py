"""Which devices' files a recipe has chosen already: `validate.ship` per device, `validate.artifact`
for all when it leaves one file; and the names a run cannot honour, refused before any timing."""

import pytest

from pipeline.core.errors import StageError
from pipeline.deploy.pinned_files import pinned_files

DEVICES = ["host", "raspberry-pi-4"]


def test_ship_pins_the_named_devices_only():
    assert pinned_files({"raspberry-pi-4": "onnx_int8"}, "auto", ["onnx_fp32", "onnx_int8"], DEVICES) == {"raspberry-pi-4": ("onnx_int8", "validate.ship")}
    assert pinned_files({"host": "onnx_fp32", "raspberry-pi-4": "onnx_int8"}, "auto", ["onnx_fp32", "onnx_int8"], DEVICES) == {
        "host": ("onnx_fp32", "validate.ship"), "raspberry-pi-4": ("onnx_int8", "validate.ship")}


def test_ship_naming_a_device_or_a_file_the_run_lacks_is_refused_by_name():
    with pytest.raises(StageError) as refused:
        pinned_files({"intel-n100": "onnx_int8"}, "auto", ["onnx_fp32", "onnx_int8"], DEVICES)
    assert str(refused.value) == "validate.ship: intel-n100 is not among this recipe's devices (host, raspberry-pi-4); name one of them or drop it"
    with pytest.raises(StageError) as refused:
        pinned_files({"host": "onnx_fp32", "raspberry-pi-4": "onnx_int8@w0.5"}, "auto", ["onnx_fp32", "onnx_int8"], DEVICES)
    assert str(refused.value) == ("validate.ship.raspberry-pi-4: onnx_int8@w0.5 is not a file this run made (onnx_fp32, onnx_int8); "
                                  "name one of them, or drop raspberry-pi-4 from ship to let validate choose")


def test_artifact_pins_every_device_only_when_it_leaves_a_single_file():
    assert pinned_files({}, "auto", ["onnx_fp32", "onnx_int8"], DEVICES) == {}
    assert pinned_files({}, "auto", ["onnx_fp32"], DEVICES) == {}, "one file made is not a file forced"
    assert pinned_files({}, "onnx_int8", ["onnx_int8"], DEVICES) == {d: ("onnx_int8", "validate.artifact") for d in DEVICES}
    assert pinned_files({}, "onnx_int8", ["onnx_int8", "onnx_int8@w0.5"], DEVICES) == {}, "a forced precision still chooses among the widths"
