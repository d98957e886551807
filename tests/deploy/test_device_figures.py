"""Which files a device is judged on: only those of a runtime its profile admits."""

import logging

import pytest
import yaml

from pipeline.core.errors import StageError
from pipeline.deploy.device_figures import Variant, judge_devices
from pipeline.deploy.profiles import load_profile


def test_a_device_that_runs_none_of_the_runtimes_built_is_a_clear_error(tmp_path):
    raw = {**yaml.safe_load(open("devices/raspberry-pi-zero-2w.yaml")), "runtimes": ["ncnn"]}
    (tmp_path / "zero.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "model.onnx").write_bytes(b"not judged: refused before anything is measured")
    variant = Variant("onnx_fp32", tmp_path / "model.onnx", None, None)
    assert variant.runtime == "onnxruntime"
    with pytest.raises(StageError, match=r"device raspberry-pi-zero-2w runs ncnn .* files measured are for onnxruntime only: .*export\.runtimes"):
        judge_devices([variant], [load_profile(str(tmp_path / "zero.yaml"))], {}, logging.getLogger("test"))
