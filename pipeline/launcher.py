"""`compress run --nproc N`: the same as `torchrun --standalone --nproc-per-node N -m pipeline run …`,
through torchrun's own elastic API rather than a process pool of our own.

For several machines, use torchrun itself (docs/distributed.md); the runner does not care which
started it.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path

from pipeline.core.errors import UserError
from pipeline.core.run_folder import RunFolder

log = logging.getLogger("compress")


class RankFailed(UserError):
    """A process of a multi-process run stopped; `exit_code` is its own."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def run_arguments(recipe: str, out_dir: str | None, *, fresh: bool, quiet: bool, debug: bool) -> list[str]:
    """`compress run`'s own arguments, for each process to run the same command."""
    flags = {"--fresh": fresh, "--quiet": quiet, "--debug": debug}
    return ["run", recipe, *(["--out", out_dir] if out_dir else []), *(flag for flag, on in flags.items() if on)]


def launch(nproc: int, args: list[str], out: Path | None = None, module: str = "pipeline") -> None:
    """Run `python -m MODULE ARGS` in `nproc` processes on this machine and wait for all of them.

    Each process gets `cpu_count / nproc` threads unless OMP_NUM_THREADS says otherwise (torchrun
    would give each one thread). If any process fails, torchrun stops the others; the error says
    which rank failed first and how to resume. `out`, the run folder, is checked first: a folder that
    cannot be written is one message, not one traceback per rank."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from pipeline.core.distributed import launched

    if launched():
        raise UserError("--nproc: this process was already started by torchrun, which sets the number of processes; drop --nproc")
    if out is not None:
        RunFolder(out).ensure_writable()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if nproc > cores:
        log.warning(
            f"--nproc {nproc} is more than the {cores} core(s) this process may use: the processes share cores and each step "
            f"waits for the slowest, so training is slower than with --nproc {cores} (results are the same)"
        )

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5,
    )
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the failure is reported below, once
    log.info(f"launching {nproc} processes (torchrun, gloo on CPU / NCCL on CUDA), {os.environ['OMP_NUM_THREADS']} threads each")
    try:
        elastic_launch(config, sys.executable)("-m", module, *args)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        raise RankFailed(
            f"rank {rank} of {nproc} stopped with exit code {failure.exitcode} (its message is above), so the run "
            "stopped on every rank. Stages that finished are kept and the one in progress is redone: fix the cause "
            "and run the same command again, with any --nproc.",
            failure.exitcode if failure.exitcode > 0 else 1,
        ) from None
