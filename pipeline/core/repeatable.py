"""The same seed gives the same weights on a GPU too.

On the CPU torch's kernels are repeatable as they are. On CUDA, cuDNN picks convolution algorithms by
timing them (`benchmark`) and several kernels add in whatever order their threads finish, so two runs
of one recipe differ in the last bits, then in every weight after some epochs. A killed run that
redoes its interrupted stage would then not end where the uninterrupted one would have. Asking for
deterministic kernels costs some speed; a recipe turns it off with `deterministic: false`.
"""

from __future__ import annotations

import os
import warnings

import torch


def make_repeatable(device: torch.device, deterministic: bool) -> None:
    """Deterministic CUDA kernels where torch has them; the ops it has none for are named once (a
    warning), not refused, so a user's model with such an op still trains."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's own condition for repeatable sums
        warnings.filterwarnings("once", message=".*does not have a deterministic implementation.*")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
