"""This process's place among the processes of one run (torchrun / DDP), and the few collectives the
pipeline needs.

A run started by `torchrun` (or `compress run --nproc N`, which calls torchrun's elastic API) has
`WORLD_SIZE`, `RANK` and `LOCAL_RANK` in its environment; `join` opens the process group (gloo for
CPU tensors, NCCL for CUDA ones). Without them everything here is the one-process case: rank 0 of 1,
and every collective returns its input.

Decisions are made once, on rank 0, and broadcast (`once`): the channels pruning removes, a
latency measurement, a stage's result. Stages that do not train run on rank 0 alone inside `solo()`,
where collectives are switched off so that code shared with training (evaluation) does not wait for
ranks that are not there.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from pipeline.core.errors import StageError

T = TypeVar("T")

# Ranks wait at a barrier while rank 0 runs a stage that does not train (export, quantize, validate);
# that may take long on a large model, so the default 30 minutes of torch.distributed is too short.
WAIT_LIMIT = datetime.timedelta(hours=int(os.environ.get("COMPRESS_RANK_WAIT_HOURS", "6")))

_solo = False


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> World:
    """Open the process group torchrun describes in the environment (no-op for one process)."""
    if not launched() or dist.is_initialized():
        return world()
    backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=WAIT_LIMIT)
    return world()


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> World:
    """This process's rank and the number of processes (1 inside `solo`)."""
    if _solo or not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@contextlib.contextmanager
def solo() -> Iterator[None]:
    """Rank 0 working alone (a stage that does not train): collectives become identities, and it
    takes the CPU threads of the processes waiting on its machine (they block in a barrier)."""
    global _solo
    previous, threads = _solo, torch.get_num_threads()
    _solo = True
    torch.set_num_threads(threads * int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    try:
        yield
    finally:
        _solo = previous
        torch.set_num_threads(threads)


def barrier() -> None:
    if world().size > 1:
        dist.barrier()


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank (any picklable object)."""
    if world().size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def once(decide: Callable[[], T]) -> T:
    """`decide()` run on rank 0 only, its result broadcast: one decision, the same on every rank."""
    if world().size == 1:
        return decide()
    return broadcast(decide() if world().main else None)


def gather(value: T) -> list[T] | None:
    """Every rank's `value`, in rank order, on rank 0 (None elsewhere)."""
    w = world()
    if w.size == 1:
        return [value]
    box = [None] * w.size if w.main else None
    dist.gather_object(value, box, dst=0)
    return box


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (in place, returned)."""
    if world().size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def shard(count: int) -> torch.Tensor:
    """This rank's share of `count` samples for evaluation: every `size`-th from `rank`, no padding,
    so the shards together are the whole split exactly once."""
    w = world()
    return torch.arange(w.rank, count, w.size)


def same_structure(module: nn.Module) -> None:
    """Raise, on every rank, if any rank's parameter and buffer shapes differ from rank 0's: a
    collective over tensors of different sizes does not fail, it waits forever."""
    w = world()
    if w.size == 1:
        return
    shapes = [(name, tuple(t.shape)) for name, t in [*module.named_parameters(), *module.named_buffers()]]
    every = [None] * w.size
    dist.all_gather_object(every, shapes)
    for rank, theirs in enumerate(every):
        if theirs != every[0]:
            first = next((f"{a[0]} {a[1]} on rank 0, {b[0]} {b[1]} on rank {rank}" for a, b in zip(every[0], theirs) if a != b), "a different number of tensors")
            raise StageError(
                f"rank {rank} of {w.size} holds a different model structure from rank 0 ({first}). The ranks must "
                "take the same steps; this is a bug, please report it. The run resumes from its last finished stage, "
                "in one process if need be (--nproc 1)."
            )


def same_weights(module: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (after training, BatchNorm statistics differ:
    each rank updated them from its own batches). The structures are checked first."""
    if world().size == 1:
        return
    same_structure(module)
    for tensor in [*module.parameters(), *module.buffers()]:
        with torch.no_grad():
            dist.broadcast(tensor.data, src=0)
