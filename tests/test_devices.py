import pytest
import yaml

from pipeline.devices import known_profiles, load_profile
from pipeline.errors import DeviceProfileError


def test_shipped_profiles_load():
    assert {"host", "raspberry-pi-4", "cortex-a55-phone"} <= set(known_profiles())
    for name in known_profiles():
        profile = load_profile(name)
        assert profile.name == name and profile.budgets.max_latency_p90_ms
    assert load_profile("host").latency_kind == "measured"
    assert load_profile("raspberry-pi-4").latency_kind == "estimated"


def test_unknown_device_lists_known():
    with pytest.raises(DeviceProfileError, match="unknown device 'pi5'; known: .*raspberry-pi-4"):
        load_profile("pi5")


def test_invalid_profile_names_the_field(tmp_path):
    raw = yaml.safe_load(open("devices/host.yaml"))
    raw["budgets"]["max_size_kb"] = -5
    del raw["threads"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DeviceProfileError) as e:
        load_profile(str(path))
    assert "threads: required field is missing" in str(e.value)
    assert "budgets.max_size_kb: Input should be greater than 0" in str(e.value)
