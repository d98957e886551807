import pytest
import yaml

from pipeline.core.errors import DeviceProfileError
from pipeline.deploy.profiles import known_profiles, load_profile


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


def test_the_library_covers_the_asked_boards_with_sources():
    names = set(known_profiles())
    assert {"raspberry-pi-4", "raspberry-pi-zero-2w", "cortex-a55-phone", "cortex-a76-phone", "jetson-nano-cpu", "intel-n100", "host"} <= names
    for name in names - {"host"}:
        profile = load_profile(name)
        assert profile.latency_factor_source == "nominal" and profile.sources and profile.storage_mb
        assert profile.latency_kind == "estimated"


def write_profile(tmp_path, **changes):
    raw = yaml.safe_load(open("devices/raspberry-pi-4.yaml"))
    raw.update(changes)
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cpu": "cortex-a99"}, "cpu: Input should be 'cortex-a53', 'cortex-a55', 'cortex-a57', 'cortex-a72', 'cortex-a76' or 'x86-64'"),
        ({"threads": 8}, "threads (8) is more than the device's cores (4)"),
        ({"sources": []}, "sources: a nominal or calibrated profile must say where its figures come from"),
        ({"budgets": {"max_latency_p90_ms": -1}}, "budgets.max_latency_p90_ms: Input should be greater than 0"),
        ({"latency_factor_source": "guessed"}, "latency_factor_source: Input should be 'measured', 'nominal' or 'calibrated'"),
        ({"runtimes": []}, "runtimes: List should have at least 1 item"),
        ({"runtimes": ["onnxruntime", "tflite"]}, "runtimes.1: Input should be 'onnxruntime', 'openvino', 'ncnn' or 'executorch'"),
        ({"runtime_factors": {"ncnn": 3.0}}, "runtime_factors_note: say where the runtime factors come from"),
        ({"runtime_factors": {"ncnn": 0.0}, "runtime_factors_note": "x"}, "every factor must be above 0"),
    ],
)
def test_bad_profiles_are_refused_naming_the_field(tmp_path, changes, message):
    with pytest.raises(DeviceProfileError) as e:
        load_profile(write_profile(tmp_path, **changes))
    assert message in str(e.value)


@pytest.mark.parametrize("budgets", [None, {}, {"max_size_kb": None}])
def test_a_profile_without_budgets_is_refused(tmp_path, budgets):
    """A device with nothing to judge would pass any model; it must never load."""
    raw = yaml.safe_load(open("devices/host.yaml"))
    if budgets is None:
        del raw["budgets"]
    else:
        raw["budgets"] = budgets
    path = tmp_path / "empty.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DeviceProfileError, match="budgets"):
        load_profile(str(path))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"threads": 2, "cores": 2, "thread_speedup": 2.5, "thread_speedup_note": "x"}, "thread_speedup (2.5) cannot exceed threads (2)"),
        ({"threads": 2, "cores": 2, "thread_speedup": 1.5}, "thread_speedup_note: a 2-thread profile must say where"),
        ({"thread_speedup": 1.5}, "thread_speedup (1.5) cannot exceed threads (1)"),
        ({"threads": 2, "cores": 2, "thread_speedup": 1.5, "thread_speedup_note": "x"}, "threads must be 1"),
    ],
)
def test_thread_speedup_is_bounded_and_sourced(tmp_path, change, message):
    raw = {**yaml.safe_load(open("devices/host.yaml")), **change}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DeviceProfileError) as refused:
        load_profile(str(path))
    assert message in str(refused.value)


def test_the_device_estimate_is_the_one_thread_host_figure_scaled():
    pi = load_profile("raspberry-pi-4")
    assert pi.estimate_ms(0.1) == round(0.1 * pi.latency_factor / pi.thread_speedup, 5)
    assert load_profile("host").estimate_ms(0.1) == 0.1


def test_a_runtime_with_its_own_calibrated_factor_is_estimated_with_it(tmp_path):
    pi = load_profile(write_profile(tmp_path, runtime_factors={"ncnn": 3.0}, runtime_factors_note="calibrated on a board"))
    assert pi.estimate_ms(0.1, "ncnn") == round(0.1 * 3.0 / pi.thread_speedup, 5)
    assert pi.estimate_ms(0.1, "executorch") == pi.estimate_ms(0.1) == round(0.1 * pi.latency_factor / pi.thread_speedup, 5)
