"""How often validate's choice between two files changes from one timing to the next: the rule it
uses (files timed together compared round by round) beside the rule it used before (medians apart
by more than the wider p10-p90 width of single runs), both reading the same timings.

Two pairs, from a finished run folder with FP32 and INT8 ONNX files (default: the quickstart's;
`make quickstart` first):
- its FP32 and INT8 ONNX files, the pair validate chooses between;
- its FP32 file and a byte copy of it, where any difference a rule finds is the host's noise.
Each repeat times a pair as validate does (`measure_latencies`: one thread, 20 warm-up runs, 200
runs in 10 interleaved rounds); both rules then read that one timing. The files' real sizes break a
tie (the smaller ships); the copy's tie goes to the first listed. The ratio is also given split by
the host's state at each timing (the first file's p50 at or below its median over the repeats, or
above): the same two files can read further apart while the host runs them slowly.

    python benchmarks/file_choice.py [--run runs/quickstart] [--repeats 30]

Run it alone on the machine: two cores are easily oversubscribed, and latency is what it measures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.deploy.variant_choice import Candidate, choose, clearly_faster  # noqa: E402
from pipeline.runtime.onnx_files import HOST_THREADS, measure_latencies  # noqa: E402


def candidates(timed: dict, paths: dict[str, Path], with_rounds: bool) -> list[Candidate]:
    return [Candidate(name, paths[name].stat().st_size / 1024, t["p50"], t["spread"] * t["p50"], {},
                      rounds_p50=tuple(t["rounds_p50"]) if with_rounds else ())
            for name, t in timed.items()]


def study(paths: dict[str, Path], repeats: int) -> dict:
    """Per rule: how often each file shipped and how often the two were called different; and the
    ratio of the second file's median to the first's over the repeats."""
    sample = np.zeros((1, 1, 28, 28), dtype=np.float32)
    rules = {"round by round (now)": True, "p10-p90 width (before)": False}
    shipped = {rule: {name: 0 for name in paths} for rule in rules}
    different = {rule: 0 for rule in rules}
    ratios, spreads, speeds = [], [], []
    first, second = list(paths)
    for _ in range(repeats):
        timed = measure_latencies(paths, sample, HOST_THREADS)
        ratios.append(timed[second]["p50"] / timed[first]["p50"])
        speeds.append(timed[first]["p50"])
        spreads += [timed[name]["spread"] for name in paths]
        for rule, with_rounds in rules.items():
            pair = candidates(timed, paths, with_rounds)
            shipped[rule][choose(pair)[0].artifact] += 1
            different[rule] += clearly_faster(*pair) is not None
    return {"shipped": shipped, "different": different, "ratios": ratios, "spreads": spreads, "speeds": speeds}


def by_host_state(result: dict) -> str:
    """The ratio in the timings where the first file ran faster than its median p50 over the repeats
    (the host in its quick state) and in the others: the same two files, read in both states."""
    middle = statistics.median(result["speeds"])
    halves = {"quick": [r for r, p in zip(result["ratios"], result["speeds"]) if p <= middle],
              "slow": [r for r, p in zip(result["ratios"], result["speeds"]) if p > middle]}
    quick, slow = (f"{statistics.median(h):.3f} ({min(h):.3f}-{max(h):.3f}), {len(h)} timings" for h in halves.values())
    return (f"ratio where the first file's p50 was at most its median over the repeats ({middle * 1000:.1f} µs): {quick}; "
            f"where it was above: {slow}")


def table(name: str, paths: dict[str, Path], result: dict, repeats: int) -> list[str]:
    first, second = list(paths)
    r, s = result["ratios"], result["spreads"]
    lines = [f"\n{name}: {second} p50 / {first} p50 over {repeats} timings: median {statistics.median(r):.3f} "
             f"(range {min(r):.3f}-{max(r):.3f}); single runs' (p90 - p10) / p50: {min(s):.2f}-{max(s):.2f}\n",
             by_host_state(result) + "\n",
             f"| rule | {first} shipped | {second} shipped | called different |", "|---|---|---|---|"]
    for rule, counts in result["shipped"].items():
        lines.append(f"| {rule} | {counts[first]} of {repeats} | {counts[second]} of {repeats} | {result['different'][rule]} of {repeats} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="a run folder with an FP32 and an INT8 ONNX file")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    report = args.run / "report.json"
    if not report.is_file():
        sys.exit(f"{report} is missing: run `make quickstart` first (or name a finished run folder with --run)")
    artifacts = json.loads(report.read_text())["artifacts"]
    if not {"onnx_fp32", "onnx_int8"} <= set(artifacts):
        sys.exit(f"{args.run} has no FP32 and INT8 ONNX pair: name a run whose recipe has export and quantize stages")
    fp32, int8 = args.run / artifacts["onnx_fp32"], args.run / artifacts["onnx_int8"]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.onnx"
        shutil.copyfile(fp32, copy)
        pairs = {"FP32 against INT8": {"onnx_fp32": fp32, "onnx_int8": int8}, "FP32 against a copy of itself": {"onnx_fp32": fp32, "copy": copy}}
        lines = []
        for name, paths in pairs.items():
            lines += table(name, paths, study(paths, args.repeats), args.repeats)
            print("\n".join(lines[-6:]), flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
