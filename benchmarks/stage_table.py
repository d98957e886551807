"""Per-stage figures of a finished run, side by side: accuracy, params, MACs, ONNX size, host latency.

The measuring lives in `pipeline/reporting/stage_figures.py` (also used by `compress report`).

    python benchmarks/stage_table.py runs/quickstart [--threads 1 --runs 500]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pipeline.reporting.stage_figures import stage_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = stage_rows(args.run_dir, [args.threads], args.runs)
    print("| stage | seconds | test acc | params | MACs | ONNX KiB | p50 ms | p90 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        kind = " (INT8)" if r["int8"] else ""
        print(
            f"| {r['stage']}{kind} | {r['seconds']:.1f} | {r['accuracy']:.4f} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | "
            f"{r['onnx_kib']:.1f} | {r['latency'][args.threads]['p50']:.4f} | {r['latency'][args.threads]['p90']:.4f} |"
        )


if __name__ == "__main__":
    main()
