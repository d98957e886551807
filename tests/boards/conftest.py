"""A board on loopback: a real OpenSSH server started here (a throwaway host key, client key and port)
whose Python holds only numpy and onnxruntime, as a small board's would. `board_profile` writes a
user copy of a device profile naming that board."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

BOARD_PACKAGES = ("numpy", "numpy.libs", "onnxruntime")  # what the torch-free script needs for an ONNX bundle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sshd_binary() -> str:
    found = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if found is None:
        pytest.fail("OpenSSH's server is not installed: apt-get install openssh-server (.ci/run installs it)")
    return found


def board_python(root: Path, packages=BOARD_PACKAGES) -> Path:
    """A Python of its own (a venv of this interpreter's base, no pip) that sees only `packages`,
    linked from this environment: no torch, no pipeline."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "python")], check=True)
    lib = root / "lib"
    lib.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in packages:
        if (site / name).exists():
            (lib / name).symlink_to(site / name)
    venv_site = next((root / "python" / "lib").glob("python3*/site-packages"))
    (venv_site / "board.pth").write_text(f"{lib}\n")
    return root / "python" / "bin" / "python"


class LoopbackBoard:
    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        keys = root / "keys"
        keys.mkdir()
        for key in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / key)], check=True)
        (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
        (keys / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {(keys / 'host.pub').read_text()}")
        self.sshd_config = root / "sshd_config"
        self.sshd_config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {keys / 'host'}", f"AuthorizedKeysFile {keys / 'authorized_keys'}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
            f"PidFile {root / 'sshd.pid'}", "Subsystem sftp internal-sftp", "LogLevel ERROR", ""]))
        self.client_config = root / "ssh_config"
        self.client_config.write_text("\n".join([
            "Host board", "  HostName 127.0.0.1", f"  Port {self.port}", f"  User {getpass.getuser()}", f"  IdentityFile {keys / 'client'}",
            "  IdentitiesOnly yes", f"  UserKnownHostsFile {keys / 'known_hosts'}", "  StrictHostKeyChecking yes", "  LogLevel ERROR", ""]))
        self.python = board_python(root)
        self.workdir = root / "work"
        self.process = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # OpenSSH's privilege-separation folder
        self.log = self.root / "sshd.log"  # a file, not a pipe: a pipe nobody reads would block sshd once full
        with self.log.open("w") as log:
            self.process = subprocess.Popen([sshd_binary(), "-D", "-e", "-f", str(self.sshd_config)], stderr=log)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                pytest.fail(f"sshd did not start: {self.log.read_text()}")
            time.sleep(0.1)
        pytest.fail("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def entry(self, **changes) -> dict:
        return {"ssh": "board", "ssh_config": str(self.client_config), "python": str(self.python), "workdir": str(self.workdir), **changes}


@pytest.fixture(scope="module")
def loopback_board(tmp_path_factory):
    board = LoopbackBoard(tmp_path_factory.mktemp("board"))
    board.start()
    yield board
    board.stop()


@pytest.fixture
def board_profile(tmp_path, loopback_board):
    """write(device, **board changes, profile={field: value}) -> a user copy of `device`'s profile naming the loopback board."""
    from pipeline.deploy.profiles import load_profile

    def write(device: str, profile: dict | None = None, boards: list[dict] | None = None, **changes) -> Path:
        raw = load_profile(device).model_dump(exclude_none=True)
        raw.update(profile or {})
        raw["boards"] = boards if boards is not None else [loopback_board.entry(**changes)]
        path = tmp_path / f"{device}-boards.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return write


