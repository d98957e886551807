"""Save and load models whose layers pruning has resized, without pickling code.

torch-pruning's own `tp.state_dict` pickles whole module objects, which `torch.load(weights_only=True)`
rightly refuses. Instead we store the plain tensors plus each module's integer shape attributes
(`in_channels`, `groups`, …); loading rebuilds the original architecture from the recipe, applies the
attributes, resizes parameters to the saved tensors and then loads strictly.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from pipeline.core.errors import CheckpointError

PICKLED_NAME = re.compile(r"GLOBAL (\S+)")  # how torch's weights-only unpickler names the class or function it refused
SHAPE_ATTRS = ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features", "num_channels", "num_groups")


def save_model(model: nn.Module, path: Path) -> None:
    shapes = {
        name: {a: getattr(m, a) for a in SHAPE_ATTRS if isinstance(getattr(m, a, None), int)}
        for name, m in model.named_modules()
    }
    torch.save({"tensors": model.state_dict(), "shapes": shapes}, path)


def load_model(model: nn.Module, path: Path) -> nn.Module:
    """Reshape `model` (freshly built, unpruned) to the saved one and load its weights. Only tensors
    and plain containers are unpickled (`weights_only=True`): a checkpoint that carries code is refused."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(refusal(path, e)) from None
    modules = dict(model.named_modules())
    for name, attrs in saved["shapes"].items():
        if name not in modules:
            raise CheckpointError(f"{path}: module '{name}' is not in the model built from the recipe")
        for attr, value in attrs.items():
            setattr(modules[name], attr, value)
    for key, tensor in saved["tensors"].items():
        owner_name, _, attr = key.rpartition(".")
        owner = modules.get(owner_name)
        if owner is None:
            raise CheckpointError(f"{path}: tensor '{key}' has no module in the model built from the recipe")
        if owner._parameters.get(attr) is not None:
            owner._parameters[attr] = nn.Parameter(torch.empty_like(tensor), requires_grad=owner._parameters[attr].requires_grad)
        elif owner._buffers.get(attr) is not None:
            owner._buffers[attr] = torch.empty_like(tensor)
    model.load_state_dict(saved["tensors"])
    return model


def refusal(path: Path, error: pickle.UnpicklingError) -> str:
    """Why a checkpoint was not loaded, in one sentence: torch's own message advises loading with
    weights_only=False, which is the one thing a user must not do with a file they did not write."""
    named = PICKLED_NAME.search(str(error))
    if named:
        return f"{path} holds more than tensors (it names {named.group(1)}) and is refused: only tensors are loaded (weights_only=True), so code in a checkpoint never runs"
    return f"{path} is not a checkpoint written by torch.save (damaged or another format): {str(error).splitlines()[-1]}"


def width_model(model: nn.Module, widths: list[dict], width: float, resolve) -> nn.Module:
    """The network of one nested width (`ModelState.widths`), in eval mode: the full model itself at
    width 1, else a copy with the sliced checkpoint loaded (`resolve` turns its run-relative path into a file)."""
    if width == 1:
        return model.eval()
    entry = next(w for w in widths if w["width"] == width)
    return load_model(copy.deepcopy(model), resolve(entry["checkpoint"])).eval()


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, with its name and shape: equal digests, equal weights
    (how the runner holds a stage that declares it leaves the weights alone to its word)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
