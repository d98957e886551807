"""A user's checkpoint into a model: weights only, strictly, with every mismatch named."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from pipeline.core.checkpoints import load_model, refusal
from pipeline.core.errors import CheckpointError


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a plain state_dict (or one under 'state_dict'/'model') strictly, explaining any mismatch.

    A `model.pt` from a run folder (possibly pruned) loads too: it carries its layers' shapes.
    """
    if not path.is_file():
        raise CheckpointError(f"model.checkpoint: {path} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"model.checkpoint: {refusal(path, e)}") from None
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"model.checkpoint: {path} cannot be loaded with weights_only=True: {str(e).splitlines()[0]}") from None
    if isinstance(saved, dict) and set(saved) == {"tensors", "shapes"}:
        load_model(model, path)
        return
    if isinstance(saved, dict) and ("state_dict" in saved or "model" in saved):
        saved = saved.get("state_dict", saved.get("model"))
    if not isinstance(saved, dict):
        raise CheckpointError(f"model.checkpoint: {path} holds a {type(saved).__name__}, not a state_dict")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    mismatched = [
        f"{k} {tuple(saved[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in saved and hasattr(saved[k], "shape") and saved[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
        if mismatched:
            parts.append(f"shape mismatches: {'; '.join(mismatched[:5])}{' …' if len(mismatched) > 5 else ''}")
        raise CheckpointError(
            f"model.checkpoint: {path} does not match the model ({'; '.join(parts)}). "
            "Check model.name/model.kwargs against the architecture the checkpoint was trained with."
        )
    model.load_state_dict(saved)
