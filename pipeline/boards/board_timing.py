"""`validate` on a profile that names a real board: every candidate file timed on the board itself.

The host's one-thread timing scaled by the profile's nominal factors is an estimate; a board on the
desk can say what the files really cost. The candidate files (every runtime the profile admits,
FP32 and INT8, every width) go to the board with the torch-free script and one input sample, are
timed there in interleaved rounds at the profile's threads (the script's `--time-probe`, the same
timing the host runs), and each file's peak memory is read in a fresh process (`--memory-probe`).
The per-device choice and the gates then read these figures; the estimate stays beside them in the
report. An emulated board's timing is never a device's, so emulated boards are not used here; with
several real boards the first one times every file, so the files are compared on one board.
"""

from __future__ import annotations

import json
import logging
import shlex
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from devices.on_device import runtimes
from pipeline.boards import ssh
from pipeline.boards.probe import probe
from pipeline.boards.remote import fresh_folder, require, unpack_and_run
from pipeline.deploy.bundle import script_files
from pipeline.deploy.profiles import Board, DeviceProfile

log = logging.getLogger("compress")


def timing_board(profile: DeviceProfile) -> Board | None:
    """The board that times this profile's files: its first real (not emulated) board, if any."""
    return next((b for b in profile.boards if not b.emulated), None)


def time_on_board(board: Board, files: dict[str, Path], sample: np.ndarray, threads: int, warmup: int, runs: int) -> dict[str, dict]:
    """name -> {"latency_ms": p50/p90/p99/spread…, "peak_memory_mb": …} for each file, measured on the board."""
    with tempfile.TemporaryDirectory(prefix="compress-board-timing-") as tmp:
        payload, members = Path(tmp) / "timing.zip", {}
        with zipfile.ZipFile(payload, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in script_files():
                archive.write(path, path.name)
            for i, (name, path) in enumerate(files.items()):
                for f in runtimes.model_files(Path(path)):  # ncnn and OpenVINO: the graph and its .bin
                    archive.write(f, f"files/{i}/{f.name}")
                members[name] = f"files/{i}/{Path(path).name}"
            buffer = Path(tmp) / "sample.npy"
            np.save(buffer, np.ascontiguousarray(sample[:1], dtype=np.float32))
            archive.write(buffer, "sample.npy")
        require(board, probe(board), [runtimes.runtime_of(Path(p)) for p in files.values()], payload)
        shape = ",".join(map(str, sample[:1].shape))
        script = f"{board.python} timing/validate_on_device.py timing"
        with fresh_folder(board, "timing") as there:
            ssh.copy_to(board, payload, f"{there}/timing.zip")
            log.info(f"board {ssh.name(board)}: timing {len(files)} file(s) at {threads} thread(s)")
            files_arg = shlex.quote(",".join(f"{n}={m}" for n, m in members.items()))  # names such as onnx_fp32@w0.5
            commands = [f"{script} --time-probe {files_arg} --sample sample.npy "
                        f"--threads {threads} --warmup {warmup} --runs {runs}"]
            commands += [f"{board.python} timing/validate_on_device.py timing/{m} --memory-probe --threads {threads} --shape {shape}"
                         for m in members.values()]
            ran = unpack_and_run(board, there, "timing.zip", " && ".join(commands))
    lines = [line for line in ran.stdout.splitlines() if line.startswith("{")]
    if ran.returncode or len(lines) != 1 + len(files):
        said = (ran.stderr.strip() or ran.stdout.strip())[-600:]
        raise ssh.BoardError(f"board {ssh.name(board)}: timing the files failed (exit {ran.returncode}): {said}")
    timed = json.loads(lines[0])
    return {name: {"latency_ms": timed[name], "peak_memory_mb": json.loads(line)["peak_memory_mb"]} for name, line in zip(files, lines[1:])}


def measure_on_boards(variants: list, sample: np.ndarray, profiles: list[DeviceProfile], warmup: int, runs: int) -> None:
    """For each profile naming a real board, time the files it admits there (`Variant.on_board`)."""
    for profile in profiles:
        board = timing_board(profile)
        admitted = [v for v in variants if v.runtime in profile.runtimes]
        if board is None or not admitted:
            continue
        try:
            measured = time_on_board(board, {v.name: v.path for v in admitted}, sample, profile.threads, warmup, runs)
        except ssh.BoardError as e:
            raise ssh.BoardError(f"{e}. validate times {profile.name}'s files on the board its profile names; to estimate from this "
                                 "host instead, set `on_boards: false` in the validate stage") from None
        for v in admitted:
            v.on_board[profile.name] = {"board": ssh.name(board), **measured[v.name]}
