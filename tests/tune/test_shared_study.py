"""Several workers share one study on a real PostgreSQL server (a throwaway cluster on a loopback
port, started here): one worker is killed mid-trial, the other finishes the study and retries the
dead worker's trial; the server's password reaches the driver only, never a file, log or message."""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from tests.tune.specs import tiny_spec

pytest.importorskip("optuna")
pytest.importorskip("psycopg")
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-" + os.urandom(4).hex()


def postgres_bin(tool: str) -> str | None:
    return shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))), None)


def as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a server tool as the `postgres` user when we are root (initdb refuses root), else as ourselves."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, capture_output=True, text=True, timeout=120, check=True, **kwargs)


@pytest.fixture(scope="module")
def postgres():
    if postgres_bin("initdb") is None:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run installs it)")
    root = Path(tempfile.mkdtemp(prefix="compress-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    (root / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        os.chown(root / "pw", pwd.getpwnam("postgres").pw_uid, -1)
    as_postgres([postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"])
    as_postgres([postgres_bin("pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "start",
                 "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1"])
    try:
        psql = [postgres_bin("psql"), "-h", str(root), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        as_postgres(psql + ["-c", f"CREATE ROLE tune LOGIN PASSWORD '{PASSWORD}'"])
        as_postgres(psql + ["-c", "CREATE DATABASE studies OWNER tune"])
        yield f"postgresql://tune@127.0.0.1:{port}/studies"
    finally:
        as_postgres([postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def write_spec(tmp_path: Path, lenient_device: Path, trials: int) -> Path:
    return tiny_spec(tmp_path, lenient_device, name="shared-study", devices=(), trials=trials)


def worker(spec: Path, url: str, out: Path) -> subprocess.Popen:
    env = {**os.environ, "COMPRESS_STORAGE_PASSWORD": PASSWORD}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "tune", str(spec), "--storage", url, "--out", str(out), "--heartbeat", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_workers_share_a_study_and_a_killed_workers_trial_is_retried(tmp_path, lenient_device, postgres):
    import optuna

    spec = write_spec(tmp_path, lenient_device, trials=4)
    doomed = worker(spec, postgres, tmp_path / "a")
    deadline = time.time() + 120
    while not list((tmp_path / "a" / "trials").glob("trial-*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # inside its first trial
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    time.sleep(5)  # past the grace period (3 heartbeats of 1 s): its trial is stale
    workers = [worker(spec, postgres, tmp_path / name) for name in ("b", "c")]  # two at once, sharing the study
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    output = "".join(outputs)
    os.environ["COMPRESS_STORAGE_PASSWORD"] = PASSWORD
    try:
        from pipeline.tune.storage import open_storage

        study = optuna.load_study(study_name="shared-study", storage=open_storage(postgres))
    finally:
        del os.environ["COMPRESS_STORAGE_PASSWORD"]
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 4 <= len(complete) <= 5, states  # a worker stops once 4 are finished; the other's trial then running still finishes
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1, f"the killed worker's trial is failed by a heartbeat that stopped: {states}"
    retried = [t for t in complete if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == failed[0].number]
    assert retried and retried[0].params == failed[0].params, "and run again with the same parameters"
    ran_here = {int(p.name.split("-")[1]) for name in ("b", "c") for p in (tmp_path / name / "trials").glob("trial-*")}
    assert {t.number for t in complete} <= ran_here, "every finished trial ran in one of the two workers"
    for folder in (tmp_path / "a", tmp_path / "b", tmp_path / "c"):
        for f in folder.rglob("*"):
            if f.is_file():
                assert PASSWORD.encode() not in f.read_bytes(), f"the password landed in {f}"
    assert PASSWORD not in output


def test_a_password_in_the_url_or_a_server_that_cannot_be_reached_is_one_paragraph(tmp_path, lenient_device):
    spec = write_spec(tmp_path, lenient_device, trials=1)
    env = {**os.environ, "COMPRESS_STORAGE_PASSWORD": PASSWORD}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    for url, message in [
        (f"postgresql://tune:{PASSWORD}@127.0.0.1:{closed}/studies", "the URL holds a password; give the URL without it and the password in COMPRESS_STORAGE_PASSWORD"),
        (f"postgresql://tune@127.0.0.1:{closed}/studies", f"cannot open the study storage postgresql://tune@127.0.0.1:{closed}/studies"),
    ]:
        done = subprocess.run([sys.executable, "-m", "pipeline", "tune", str(spec), "--storage", url, "--out", str(tmp_path / "t")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert PASSWORD not in done.stderr + done.stdout
    assert not (tmp_path / "t" / "trials").exists()
