"""`compress board run RUN_DIR --device NAME`: the bundle run on each of the profile's boards, judged here.

For every board: check it has what the bundle needs (Python, numpy, the file's runtime, disk), copy
the bundle into a fresh folder under its `workdir`, run the torch-free script there under the board's
own time limit (at the profile's threads, and at one thread when that is more), fetch `results.json`,
refuse results of another model or device, and judge them with the gate's rules. The folder on the
board is removed afterwards, whatever happened. Nothing is written into the run folder: results go
to `--out` (default `board-<device>/`), one file per board, and `--calibrate` writes a calibrated
copy of the profile from the first real board (an emulated board's timings are never a device's).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devices.on_device import verdicts
from pipeline.boards import ssh
from pipeline.boards.claims import foreign_results
from pipeline.boards.probe import boards_of, probe
from pipeline.boards.remote import fresh_folder, require, unpack_and_run
from pipeline.core.errors import UserError
from pipeline.deploy.bundle import make_bundle
from pipeline.deploy.calibration import calibrated_profile, read_results, write_profile
from pipeline.deploy.gate import GateResult, judge_report
from pipeline.deploy.profiles import Board, DeviceProfile, load_profile

log = logging.getLogger("compress")
# an emulator's time and memory are not the device's: on an emulated board only what the instruction
# set decides (the predictions, so accuracy) and the file's size are judged
TIMED_FIGURES = ("latency_p90_ms", "peak_memory_mb")
JUDGED_UNDER_EMULATION = tuple(budget for budget, (figure, _) in verdicts.RULES.items() if figure not in TIMED_FIGURES)
# nor calibrated from, so it times each thread count for 2 s, not a device's 20, and an emulated board
# in CI is not kept waiting (a detector under qemu-user, 0.27 s a run: 130 s of script, 121 s timing)
EMULATED_TIMING_SECONDS = 2.0


@dataclass
class BoardRun:
    board: Board
    results: dict
    results_file: Path
    gate: GateResult


def results_name(board: Board, number: int | None = None) -> str:
    """`<board>.results.json`; numbered when a profile has several boards (two may share an address)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ssh.name(board))
    return (f"{number}-" if number is not None else "") + safe + ".results.json"


def run_on_boards(run_dir: Path, device: str, out_dir: Path | None = None, artifact: str | None = None, samples: int | None = None) -> list[BoardRun]:
    """Run the device's bundle on each of its boards; nothing is written unless every board answered."""
    profile = load_profile(device)
    boards = boards_of(profile)
    out_dir = Path(out_dir or f"board-{profile.name}")
    done = []
    with tempfile.TemporaryDirectory(prefix="compress-board-") as tmp:
        bundle = Path(tmp) / "bundle.zip"
        manifest = make_bundle(Path(run_dir), device, bundle, artifact, samples)
        for board in boards:
            results = run_one(board, bundle, manifest, profile, Path(tmp))
            done.append((board, results))
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for number, (board, results) in enumerate(done, 1):
        path = out_dir / results_name(board, number if len(done) > 1 else None)
        path.write_text(json.dumps(results, indent=2) + "\n")
        runs.append(BoardRun(board, results, path, judge_report(results, only=JUDGED_UNDER_EMULATION if board.emulated else None)))
    return runs


def run_one(board: Board, bundle: Path, manifest: dict, profile: DeviceProfile, scratch: Path) -> dict:
    require(board, probe(board), [manifest["model"].get("runtime", "onnxruntime")], bundle)
    with fresh_folder(board, "run") as there:
        ssh.copy_to(board, bundle, f"{there}/bundle.zip")
        log.info(f"board {ssh.name(board)}: running {manifest['model']['artifact']} ({manifest['model'].get('runtime', 'onnxruntime')}) "
                 f"at {profile.threads} thread(s)")
        timing = f" --max-seconds {EMULATED_TIMING_SECONDS:g}" if board.emulated else ""
        ran = unpack_and_run(board, there, "bundle.zip", f"{board.python} bundle/validate_on_device.py bundle --out results.json{timing}",
                             ", or bundle fewer --samples")
        local = scratch / results_name(board)
        try:
            ssh.copy_from(board, f"{there}/results.json", local)
        except ssh.BoardError:
            said = (ran.stderr.strip() or ran.stdout.strip())[-600:]
            raise ssh.BoardError(f"board {ssh.name(board)}: the script wrote no results (exit {ran.returncode}): {said}") from None
    results = read_results(local)
    foreign = foreign_results(results, manifest, profile.name)
    if foreign:
        raise ssh.BoardError(f"board {ssh.name(board)}: {foreign}; refused")
    results["board"] = {"ssh": ssh.name(board), "emulated": board.emulated,
                        "timing": "emulated: not a device timing" if board.emulated else "measured on the board"}
    return results


def spread(runs: list[BoardRun]) -> dict | None:
    """p50 latency over the real boards: median, lowest and highest (None with fewer than two)."""
    p50s = [r.results["latency_ms"]["p50"] for r in runs if not r.board.emulated]
    if len(p50s) < 2:
        return None
    return {"boards": len(p50s), "median_ms": statistics.median(p50s), "min_ms": min(p50s), "max_ms": max(p50s)}


def calibrate_from(runs: list[BoardRun], device: str, run_dir: Path, out: Path | None, force: bool) -> Path:
    """A calibrated copy of the profile from the first real board's results (host timed here, now)."""
    real = [r for r in runs if not r.board.emulated]
    if not real:
        raise UserError("--calibrate: every board of this profile is emulated, and timings under emulation are not the device's; "
                        "calibrate from a real board")
    profile, _ = calibrated_profile(device, real[0].results_file, run_dir)
    return write_profile(profile, out or Path(f"{profile.name}.calibrated.yaml"), force)


def run_lines(runs: list[BoardRun]) -> list[str]:
    """What `compress board run` prints: per board its figures and verdict, each budget, the spread."""
    def fmt(x) -> str:
        return "–" if x is None else f"{x:.4g}"

    lines = []
    for r in runs:
        res, lat = r.results, r.results["latency_ms"]
        verdict = verdicts.VERDICT[r.gate.passed]
        lines.append(f"board {res['board']['ssh']}: {res['artifact']} on {res['platform'].get('machine')}, accuracy {res['accuracy']:.4f} "
                     f"(agreement with the host {res['agreement_with_host']:.4f}), p50 {lat['p50']:.4f} ms / p90 {lat['p90']:.4f} ms at "
                     f"{res['threads']} thread(s) ({res['board']['timing']}) -> {verdict}; {r.results_file}")
        lines += [f"  {row.budget:<20} {fmt(row.value):>12} {fmt(row.limit):>12}  {dict([(True, 'pass'), (False, 'FAIL'), (None, 'unknown')])[row.passed]}"
                  for row in r.gate.rows]
        if r.gate.not_judged:
            lines.append(f"  not judged under emulation (not the device's time or memory): {', '.join(r.gate.not_judged)}")
    across = spread(runs)
    if across:
        lines.append(f"p50 over {across['boards']} boards: median {across['median_ms']:.4f} ms, {across['min_ms']:.4f} to {across['max_ms']:.4f} ms")
    return lines
