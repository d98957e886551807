"""The same two files, timed in two runs: does their speed ratio move with the host's state?

    python benchmarks/host_state.py [--study runs/bench-tune-rounds50]

Reads a finished `benchmarks/tune_study.py` folder, whose two sides ran many trials with the same
recipe. For each trial whose FP32 and INT8 ONNX files are byte for byte the same on both sides,
validate timed that one pair twice, in two processes at two moments: each side's FP32 p50 (how fast
the host ran it then) and INT8/FP32 at the median of the interleaved rounds (what the choice reads).
Where the two FP32 p50s differ by more than 10 %, it counts whether the side that ran slower read the
larger ratio. Nothing is timed here; the figures are those the study's validate stages recorded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SIDES = {"compress tune": "pipeline/tune/trials", "plain script": "plain"}


def pair(trial: Path) -> tuple[bytes, float, float] | None:
    """(the two files' bytes, FP32 p50 in ms, INT8/FP32 at the median of the rounds), or None."""
    validate = next(trial.glob("*-validate/metrics.json"), None)
    report = trial / "report.json"
    if validate is None or not report.is_file():
        return None
    variants = json.loads(validate.read_text())["variants"]
    artifacts = json.loads(report.read_text())["artifacts"]
    if not {"onnx_fp32", "onnx_int8"} <= set(variants):
        return None
    fp32, int8 = variants["onnx_fp32"]["host_latency_ms"], variants["onnx_int8"]["host_latency_ms"]
    ratio = statistics.median(b / a for a, b in zip(fp32["rounds_p50"], int8["rounds_p50"]))
    files = b"".join((trial / artifacts[name]).read_bytes() for name in ("onnx_fp32", "onnx_int8"))
    return files, fp32["p50"], ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("runs/bench-tune-rounds50"))
    args = parser.parse_args()
    if not (args.study / SIDES["plain script"]).is_dir():
        sys.exit(f"{args.study} is not a finished benchmarks/tune_study.py folder (it has no plain/): run that benchmark first")
    print("| trial | compress tune: FP32 p50 µs, INT8/FP32 | plain script: FP32 p50 µs, INT8/FP32 | the slower side reads the larger ratio |")
    print("|---|---|---|---|")
    larger = smaller = close = 0
    for trial in sorted((args.study / SIDES["plain script"]).glob("trial-*[0-9]")):
        tune, plain = pair(args.study / SIDES["compress tune"] / trial.name), pair(trial)
        if tune is None or plain is None or tune[0] != plain[0]:
            continue  # not the same two files on both sides
        (_, fast_a, ratio_a), (_, fast_b, ratio_b) = tune, plain
        if max(fast_a, fast_b) / min(fast_a, fast_b) <= 1.10:
            verdict, close = "speeds within 10 %", close + 1
        elif (ratio_a > ratio_b) == (fast_a > fast_b):
            verdict, larger = "yes", larger + 1
        else:
            verdict, smaller = "no", smaller + 1
        print(f"| {int(trial.name[6:])} | {fast_a * 1000:.1f}, {ratio_a:.3f} | {fast_b * 1000:.1f}, {ratio_b:.3f} | {verdict} |")
    print(f"\nthe same pair on both sides: {larger + smaller + close}; host speeds more than 10 % apart: {larger + smaller}, "
          f"of which the slower side read the larger INT8/FP32 ratio in {larger}")


if __name__ == "__main__":
    main()
