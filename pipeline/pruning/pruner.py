"""Torch-Pruning's dependency-graph pruner, set up for a model with heads beside it.

The pruner traces the backbone *with* its heads (`HeadedModel.forward_all`), so a head's input
channels go with the backbone channels it reads; classifiers (any layer whose outputs are the
classes) are never pruned, since that would remove classes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from pipeline.core import distributed
from pipeline.core.errors import StageError
from pipeline.data import DataSplits
from pipeline.models.classifier import classifier_name, outputs
from pipeline.pruning.channel_mixing import ChannelMixing
from pipeline.models.heads import HeadedModel

IMPORTANCE: dict[str, Callable[[], tp.importance.Importance]] = {
    "magnitude": lambda: tp.importance.GroupMagnitudeImportance(p=2),
    "taylor": lambda: tp.importance.GroupTaylorImportance(),
    "bn_scale": lambda: tp.importance.BNScaleImportance(),
    "lamp": lambda: tp.importance.LAMPImportance(p=2),
}


def build_pruner(
    traced: HeadedModel,
    example: torch.Tensor,
    importance: str,
    *,
    global_pruning: bool,
    pruning_ratio: float,
    max_layer_ratio: float,
    increments: int,
    ignore: list[str],
    round_to: int | None,
    num_classes: int,
    mixing: ChannelMixing,
) -> tp.pruner.MetaPruner:
    """A pruner that removes `pruning_ratio` of each layer's channels over `increments` steps; build
    and use it inside `mixing` (channel shuffles, see channel_mixing.py)."""
    return tp.pruner.MetaPruner(
        traced,
        example,
        forward_fn=mixing.forward_fn(lambda m, x: m.forward_all(x)),
        importance=IMPORTANCE[importance](),
        global_pruning=global_pruning,
        pruning_ratio=pruning_ratio,
        max_pruning_ratio=max_layer_ratio,
        iterative_steps=increments,
        ignored_layers=ignored_layers(traced.backbone, tuple(example.shape[1:]), ignore, num_classes) + head_classifiers(traced.heads, num_classes),
        round_to=round_to,
    )


Removal = tuple[str, bool, list[int]]  # (module name, out-channels?, channel indices), as torch-pruning's history records it


def prune_once(
    pruner: tp.pruner.MetaPruner,
    traced: HeadedModel,
    importance: str,
    data: DataSplits,
    device: torch.device,
    until: Callable[[], bool] | None = None,
    whole_groups: bool = False,
) -> list[Removal]:
    """One pruner step; returns the channels it removed. With `until`, the step stops as soon as
    `until()` holds (`step_until`). Under torchrun the step is decided on rank 0 and the others remove
    the same channels, so every rank holds the same structure."""
    traced.to(device)  # the recovery before this step left it on the CPU
    history = pruner.DG.pruning_history()
    done = len(history)

    def decide() -> list[Removal]:
        if importance == "taylor":  # Taylor importance needs gradients, on every output (heads too)
            traced.zero_grad()
            for x, y, _ in data.train.batches(data.batch_size, torch.arange(min(len(data.train), 4 * data.batch_size))):
                x, y = x.to(device), y.to(device)
                sum(F.cross_entropy(out, y) for out in traced.forward_all(x)).backward()
        if until is None:
            pruner.step()
        else:
            step_until(pruner, until, whole_groups)
        traced.zero_grad(set_to_none=True)
        return [(name, bool(out), [int(i) for i in idxs]) for name, out, idxs in pruner.DG.pruning_history()[done:]]

    removed = distributed.once(decide)
    if not distributed.world().main:
        replay(pruner, removed)
    distributed.same_structure(traced)
    return removed


def step_until(pruner: tp.pruner.MetaPruner, until: Callable[[], bool], whole_groups: bool = False) -> None:
    """One pruner step that stops as soon as `until()` holds, checked before each group and after
    each channel. A per-layer step removes the same share of every layer, and in a network whose
    widths are multiples of each other (16/32/64) the layers lose a channel together: one whole step
    can take a quarter of what is left. Stopping mid-step lands a MACs or params goal within a
    channel of it. Channels go highest index first, so the indices still to go stay valid; what the
    step leaves is caught up by the next one (torch-pruning sizes each step from a layer's starting
    width). Groups whose channels must go together (grouped convolutions, `round_to`) go whole."""
    for group in pruner.step(interactive=True):
        if until():
            return
        if whole_groups or pruner._get_channel_groups(group) > 1:
            group.prune()
            continue
        root, handler = group[0].dep.target.module, group[0].dep.handler
        for index in sorted((int(i) for i in group[0].idxs), reverse=True):
            pruner.DG.get_pruning_group(root, handler, [index]).prune()  # not group.prune(idxs=…): it records the whole group too
            if until():
                return


def replay(pruner: tp.pruner.MetaPruner, removed: list[Removal]) -> None:
    """Remove exactly `removed` (decided elsewhere) as one pruner step."""
    pruner.current_step += 1
    graph = pruner.DG
    for name, out_channels, idxs in removed:
        module = graph.model.get_submodule(name)
        handler = graph.get_pruner_of_module(module)
        fn = handler.prune_out_channels if out_channels else handler.prune_in_channels
        graph.get_pruning_group(module, fn, idxs).prune()


def ignored_layers(model: nn.Module, input_shape: tuple[int, ...], names: list[str], num_classes: int) -> list[nn.Module]:
    """The model's classifier (`models/classifier.py`) plus the user's named modules."""
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        prunable = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise StageError(f"prune.ignore: no module named {', '.join(unknown)}; conv/linear modules: {', '.join(prunable)}")
    own = classifier_name(model, input_shape, num_classes)
    return ([modules[own]] if own is not None else []) + [modules[n] for n in names]


def head_classifiers(heads: nn.Module, num_classes: int) -> list[nn.Module]:
    """Each auxiliary head's final layer (heads are this project's own code: each ends in one `fc`)."""
    return [m for m in heads.modules() if outputs(m) == num_classes]
