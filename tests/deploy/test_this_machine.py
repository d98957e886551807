"""The host profile states the machine it runs on, read when it loads, not fixed figures."""

import os

import pytest

from pipeline.core.errors import DeviceProfileError
from pipeline.deploy import this_machine
from pipeline.deploy.profiles import load_profile


def test_the_host_profile_reads_the_machine_it_runs_on():
    host = load_profile("host")
    assert host.cores == os.cpu_count() and host.threads == 1
    meminfo = open("/proc/meminfo").read()
    assert host.memory_mb == int(next(line for line in meminfo.splitlines() if line.startswith("MemTotal:")).split()[1]) // 1024
    flags = open("/proc/cpuinfo").read()
    assert host.int8_dot_product == any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "asimddp"))
    assert load_profile("host") == host, "the same machine reads the same: a resumed run's validate stage is not re-run"


def test_what_cannot_be_detected_is_named(monkeypatch):
    monkeypatch.setattr(this_machine, "memory_mb", lambda: None)
    with pytest.raises(DeviceProfileError, match="board.yaml: memory_mb: cannot be detected on this machine; write the value in the profile"):
        this_machine.fill_in({"name": "b", "memory_mb": "detect", "cores": "detect"}, "board.yaml")
    assert this_machine.fill_in({"name": "b", "cores": 3}, "board.yaml") == {"name": "b", "cores": 3}


@pytest.mark.parametrize("machine, part, expected", [
    ("x86_64", None, "x86-64"), ("aarch64", "0xd08", "cortex-a72"), ("aarch64", "0xd05", "cortex-a55"), ("aarch64", "0xfff", "cortex-a72"),
])
def test_the_cpu_class_of_x86_and_arm_machines(monkeypatch, machine, part, expected):
    monkeypatch.setattr(this_machine.platform, "machine", lambda: machine)
    monkeypatch.setattr(this_machine, "_read", lambda path: f"processor\t: 0\nCPU part\t: {part}\n" if part else "")
    assert this_machine.cpu_class() == expected


def test_dot_product_flags_of_x86_and_arm(monkeypatch):
    monkeypatch.setattr(this_machine, "_read", lambda path: "flags\t\t: fpu sse avx2\n")
    assert this_machine.int8_dot_product() is False
    monkeypatch.setattr(this_machine, "_read", lambda path: "Features\t: fp asimd asimddp\n")
    assert this_machine.int8_dot_product() is True
    monkeypatch.setattr(this_machine, "_read", lambda path: "")
    assert this_machine.int8_dot_product() is None
