"""`compress board check/run` against a real SSH server on loopback whose Python has only numpy and
onnxruntime: what the board has, the bundle run and judged there, calibration from it, and each way a
board run fails (unreachable, key refused, no Python, no runtime, no disk, a hang) as one paragraph
with exit 2 and the run folder untouched."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from tests.boards.conftest import board_python, free_port
from tests.conftest import mounted_tmpfs


def compress(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def folder_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def host_like(board_profile, **changes) -> Path:
    """A copy of the host profile (this machine, as the loopback board is) running ONNX Runtime only."""
    return board_profile("host", profile={"runtimes": ["onnxruntime"]}, **changes)


def test_board_check_says_what_the_board_has_and_which_claims_it_contradicts(board_profile):
    agrees = compress("board", "check", host_like(board_profile))
    assert agrees.exit_code == 0, agrees.output
    assert "board board: x86_64 Linux" in agrees.output and "numpy" in agrees.output and "onnxruntime 1." in agrees.output
    assert "agrees with the profile" in agrees.output
    pi = compress("board", "check", board_profile("raspberry-pi-4"))
    assert pi.exit_code == 1, pi.output
    assert "contradicts the profile: cpu: the profile says cortex-a72 (arm), the board is x86_64" in pi.output
    assert "contradicts the profile: cores: the profile says 4" in pi.output or os.cpu_count() == 4


def test_board_run_judges_the_bundle_on_the_board_and_calibrates_from_it(finished_run, board_profile, loopback_board, tmp_path):
    before = folder_digest(finished_run)
    done = compress("board", "run", finished_run, "--device", host_like(board_profile), "--out", tmp_path / "out",
                    "--calibrate", "--calibrated-out", tmp_path / "host.calibrated.yaml")
    assert done.exit_code in (0, 1), done.output
    results = json.loads((tmp_path / "out" / "board.results.json").read_text())
    assert results["agreement_with_host"] == 1.0 and results["accuracy"] == results["expected"]["sample_accuracy"]
    assert results["board"] == {"ssh": "board", "emulated": False, "timing": "measured on the board"}
    assert ("-> PASS" if results["passed"] else "-> FAIL") in done.output and "max_latency_p90_ms" in done.output
    calibrated = yaml.safe_load((tmp_path / "host.calibrated.yaml").read_text())
    assert calibrated["latency_factor_source"] == "calibrated" and calibrated["boards"][0]["ssh"] == "board"
    assert folder_digest(finished_run) == before, "the run folder is left as it was"
    assert list(loopback_board.workdir.iterdir()) == [], "the board's run folder is removed"


def test_several_boards_each_get_a_results_file_and_their_spread_is_said(finished_run, board_profile, loopback_board, tmp_path):
    profile = board_profile("host", profile={"runtimes": ["onnxruntime"]}, boards=[loopback_board.entry(), loopback_board.entry()])
    done = compress("board", "run", finished_run, "--device", profile, "--out", tmp_path / "out")
    assert done.exit_code in (0, 1), done.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1-board.results.json", "2-board.results.json"]
    assert "p50 over 2 boards: median" in done.output


def test_an_emulated_board_never_calibrates(finished_run, board_profile, tmp_path):
    done = compress("board", "run", finished_run, "--device", host_like(board_profile, emulated=True), "--out", tmp_path / "out", "--calibrate")
    assert done.exit_code == 1 and "every board of this profile is emulated" in done.output
    assert "emulated: not a device timing" in json.loads((tmp_path / "out" / "board.results.json").read_text())["board"]["timing"]
    assert "not judged under emulation (not the device's time or memory): max_latency_p90_ms, max_peak_memory_mb" in done.output
    assert "max_latency_p90_ms   " not in done.output, "the emulator's latency is not judged against the budget"


def refused(finished_run, profile: Path, tmp_path: Path, *expected: str):
    before = folder_digest(finished_run)
    done = compress("board", "run", finished_run, "--device", profile, "--out", tmp_path / "out")
    assert done.exit_code == 2, done.output
    for text in expected:
        assert text in done.output, done.output
    assert "Traceback" not in done.output and not (tmp_path / "out").exists() and folder_digest(finished_run) == before
    return done.output


def test_an_unreachable_board_and_a_refused_key_are_said_plainly(finished_run, board_profile, loopback_board, tmp_path):
    refused(finished_run, host_like(board_profile, port=free_port()), tmp_path, "board board:", "unreachable", "Connection refused")
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(loopback_board.client_config.read_text().replace(str(loopback_board.root / "keys" / "client"), str(other)))
    refused(finished_run, host_like(board_profile, ssh_config=str(config)), tmp_path, "authentication refused", "ssh-copy-id board",
            "passwords are never used")


def test_a_board_without_python_or_without_the_runtime_names_the_fix(finished_run, board_profile, tmp_path):
    refused(finished_run, host_like(board_profile, python="/nowhere/python3"), tmp_path, "no Python at `/nowhere/python3`")
    bare = board_python(tmp_path / "bare", ("numpy", "numpy.libs"))
    refused(finished_run, host_like(board_profile, python=str(bare)), tmp_path, "onnxruntime do not import", f"{bare} -m pip install onnxruntime")


def test_a_full_disk_on_the_board_is_said_before_anything_is_copied(finished_run, board_profile, tmp_path):
    for small in mounted_tmpfs(tmp_path / "tiny-disk", "size=64k", "a 64 KiB tmpfs"):
        refused(finished_run, host_like(board_profile, workdir=str(small)), tmp_path, "out of disk", "MB free in")


def test_a_run_that_hangs_is_killed_on_the_board_and_reported(finished_run, board_profile, loopback_board, tmp_path):
    hangs = tmp_path / "hanging-python"  # runs the probe and the unzip, then hangs in the bundle's script
    hangs.write_text(f'#!/bin/sh\ncase "$1" in -c|-m) exec {loopback_board.python} "$@";; esac\nsleep 600\n')
    hangs.chmod(0o755)
    refused(finished_run, host_like(board_profile, python=str(hangs), timeout_s=3), tmp_path, "took longer than 3 s and was killed on the board")
    assert not subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True).stdout, "nothing is left running on the board"


def test_a_profile_without_boards_says_how_to_name_one(finished_run, tmp_path):
    done = compress("board", "run", finished_run, "--device", "host", "--out", tmp_path / "out")
    assert done.exit_code == 1 and "device host names no boards: add `boards: [{ssh: user@host}]`" in done.output


def test_a_board_address_that_ssh_would_read_as_an_option_is_refused(tmp_path):
    from pipeline.core.errors import DeviceProfileError
    from pipeline.deploy.profiles import load_profile

    raw = load_profile("raspberry-pi-4").model_dump(exclude_none=True)
    for bad in ("-oProxyCommand=touch /tmp/owned", "pi@host; rm -rf /", ""):
        raw["boards"] = [{"ssh": bad}]
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(DeviceProfileError, match=r"boards.0.ssh"):
            load_profile(str(path))
    raw["boards"] = [{"ssh": "pi@pi4.local", "port": 2222}, {"ssh": "lab-pi"}]
    path.write_text(yaml.safe_dump(raw))
    assert [b.ssh for b in load_profile(str(path)).boards] == ["pi@pi4.local", "lab-pi"]
