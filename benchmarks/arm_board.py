"""Run files of finished runs on the emulated Arm board and on the x86 loopback board: agreement
with the host's predictions, accuracy on the bundled sample, and the wall time of `board run`.

    python benchmarks/arm_board.py runs/quickstart:onnx_fp32 runs/quickstart:onnx_int8 [--samples 1000] [--no-x86]

Each RUN:ARTIFACT is bundled for a copy of the `raspberry-pi-4` profile admitting only that file's
runtime and run with `compress board run` on the tests' loopback SSH board (`tests/boards/conftest.py`:
a real OpenSSH server on 127.0.0.1 with a throwaway key): once with an x86 Python holding only numpy
and the runtime, once with Debian's aarch64 Python under qemu-user (`tests/boards/arm64_root.sh`
builds it, with numpy, ONNX Runtime and ncnn aarch64 wheels). Timings under emulation are qemu's, not
Arm's: only agreement and accuracy mean anything there. Needs root (sshd) and the Arm root built.
Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from devices.on_device.runtimes import RUNNERS  # noqa: E402
from pipeline.cli import main  # noqa: E402
from pipeline.core.state import RUNTIME_OF_FORMAT, artifact_kind  # noqa: E402
from pipeline.deploy.profiles import load_profile  # noqa: E402
from tests.boards.conftest import BOARD_PACKAGES, LoopbackBoard, board_python  # noqa: E402

ARM_ROOT = Path("/var/cache/edge-compress/arm64")


def profile_for(board: dict, runtime: str, folder: Path) -> Path:
    raw = load_profile("raspberry-pi-4").model_dump(exclude_none=True)
    raw.update(runtimes=[runtime], boards=[board])
    path = folder / f"pi4-{runtime}-{'arm' if board.get('emulated') else 'x86'}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def main_(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="RUN_DIR:ARTIFACT, e.g. runs/quickstart:onnx_int8")
    parser.add_argument("--samples", type=int, default=None, help="default: the bundle's cap")
    parser.add_argument("--no-x86", action="store_true", help="only the emulated Arm board")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="arm-board-") as tmp:
        tmp = Path(tmp)
        (tmp / "board").mkdir()
        (tmp / "x86").mkdir()
        board = LoopbackBoard(tmp / "board")
        runtimes = {RUNTIME_OF_FORMAT[artifact_kind(f.split(":")[1]).rsplit("_", 1)[0]] for f in args.files}
        board.python = board_python(tmp / "x86", BOARD_PACKAGES + tuple(RUNNERS[r].package for r in runtimes if r != "onnxruntime"))
        board.start()
        try:
            print("| file | board | agreement with the host | accuracy (host expected) | p50 ms | wall s of `board run` |")
            print("|---|---|---|---|---|---|")
            for spec in args.files:
                run_dir, artifact = spec.rsplit(":", 1)
                runtime = RUNTIME_OF_FORMAT[artifact_kind(artifact).rsplit("_", 1)[0]]
                boards = ([] if args.no_x86 else [("x86_64", board.entry())]) + [
                    ("aarch64 under qemu", board.entry(python=str(ARM_ROOT / "python"), emulated=True, timeout_s=1800))]
                for label, entry in boards:
                    out = tmp / "out" / f"{Path(run_dir).name}-{artifact}-{label.split()[0]}"
                    started = time.perf_counter()
                    done = CliRunner().invoke(main, ["board", "run", run_dir, "--device", str(profile_for(entry, runtime, tmp)), "--artifact", artifact,
                                                     "--out", str(out), *(["--samples", str(args.samples)] if args.samples else [])])
                    wall = time.perf_counter() - started
                    if done.exit_code not in (0, 1):
                        raise SystemExit(f"{spec} on {label}: {done.output}")
                    r = json.loads(next(out.glob("*.results.json")).read_text())
                    p50 = f"{r['latency_ms']['p50']:.3g}" + (" (emulated)" if entry.get("emulated") else "")
                    print(f"| {Path(run_dir).name}'s {artifact} | {label}, {runtime} {r['platform'].get(runtime)} | {r['agreement_with_host']:.4f} "
                          f"({r['samples']} samples) | {r['accuracy']:.4f} ({r['expected']['sample_accuracy']:.4f}) | {p50} | {wall:.1f} |", flush=True)
        finally:
            board.stop()


if __name__ == "__main__":
    main_()
