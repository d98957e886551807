"""Calibration refuses timings of another instruction set than the profile's CPU."""

from pathlib import Path

import pytest

from pipeline.core.errors import UserError
from pipeline.deploy.calibration import same_architecture
from pipeline.deploy.profiles import load_profile


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "armv7l", "ARMV8L", "armv6l"])
def test_arm_results_calibrate_an_arm_board(machine):
    same_architecture({"platform": {"machine": machine}}, load_profile("raspberry-pi-4"), Path("r.json"))


@pytest.mark.parametrize("machine", ["x86_64", "AMD64", "i686", "i386"])
def test_x86_results_calibrate_an_x86_box_and_never_an_arm_board(machine):
    same_architecture({"platform": {"machine": machine}}, load_profile("intel-n100"), Path("r.json"))
    with pytest.raises(UserError) as refused:
        same_architecture({"platform": {"machine": machine}}, load_profile("raspberry-pi-4"), Path("r.json"))
    assert str(refused.value) == (
        f"r.json was measured on a {machine.lower()} (x86) machine, but profile raspberry-pi-4 is a cortex-a72 (arm) device: "
        "calibrating it with these timings would make every estimate for it a figure of another CPU. Run the bundle on the "
        "raspberry-pi-4 itself, or calibrate a profile of the machine that ran it (cpu: x86-64)"
    )


def test_arm_results_never_calibrate_an_x86_box():
    with pytest.raises(UserError, match=r"a aarch64 \(arm\) machine, but profile intel-n100 is a x86-64 \(x86\) device.*\(cpu: the Arm core it has\)"):
        same_architecture({"platform": {"machine": "aarch64"}}, load_profile("intel-n100"), Path("r.json"))


@pytest.mark.parametrize("results", [{"platform": {"machine": "riscv64"}}, {"platform": {}}, {}])
def test_results_that_do_not_say_their_cpu_are_refused(results):
    with pytest.raises(UserError, match="does not say which kind of CPU measured it"):
        same_architecture(results, load_profile("raspberry-pi-4"), Path("r.json"))
