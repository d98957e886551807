"""Where a MACs or params target lands: each pruning round's share of the start, no training.

    python benchmarks/prune_landing.py [--model resnet20] [--keep-macs 0.25] [--steps 4] [--schedule geometric]

Recovery is 0 epochs, so this measures only how the pruner approaches each round's goal (seconds on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from pipeline.core.state import ModelState
from pipeline.data import DataConfig, load_data
from pipeline.deploy.profiles import load_profile
from pipeline.models import ModelConfig, build_model
from pipeline.stages.base import StageContext
from pipeline.stages.prune import PruneConfig, run
from pipeline.training.evaluation import size_figures
from pipeline.training.loop import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--keep-macs", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--schedule", choices=["linear", "geometric"], default="geometric")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    data = load_data(DataConfig(train_subset=200, test_subset=100), seed=0)  # embedded data: only shapes matter here
    ctx = StageContext(data=data, device=torch.device("cpu"), run_dir=folder, stage_dir=folder, seed=0, profiles=[load_profile("host")],
                       recipe_meta={"name": "landing", "sha256": "0" * 64}, log=logging.getLogger("landing"), quiet=True)
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=args.model), *data.input_shape[:1], data.num_classes)
    start = size_figures(model, data.input_shape)["macs"]
    started = time.perf_counter()
    cfg = PruneConfig(target={"keep_macs": args.keep_macs}, steps=args.steps, schedule=args.schedule, finetune=TrainConfig(epochs=0))
    run(cfg, ModelState(model=model, reference={"accuracy": 0.0}), ctx)
    shares = [round(r["macs"] / start, 4) for r in ctx.metrics["rounds"]]
    print(f"{args.model} keep_macs {args.keep_macs} in {args.steps} {args.schedule} rounds: MACs share after each round {shares} "
          f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
