"""Auxiliary classifier heads on any model, without editing the model's code: a model part.

Forward hooks on the backbone record the outputs of the attach points; the heads read them after the
backbone's forward. Heads live beside the backbone (`ModelState.heads`), never inside it, so exporting
the backbone strips them by construction. `HeadedModel` joins the two:

- for training, its forward returns the backbone's logits like the plain model (so the one training
  loop and `accuracy` work unchanged) and leaves the heads' logits and features on the side for the
  loss terms;
- for tracing, `forward_all` returns every output, so torch-pruning's dependency graph sees the heads
  and removes their input channels together with the backbone's.

What heads are trained for lives with the other objectives (`training/objectives.py`: deep
supervision), and how they score with the other figures (`training/evaluation.py`).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from pipeline.core.errors import StageError
from pipeline.core.state import ModelState
from pipeline.models.zoo import conv_bn_relu
from pipeline.models.trace import feature_maps, final_features, trace_outputs

HeadKind = Literal["linear", "bottleneck"]


class HeadSpec(BaseModel):
    """Everything needed to rebuild a head before loading its (possibly pruned) weights."""

    model_config = ConfigDict(extra="forbid")

    name: str
    attach: str
    kind: HeadKind
    in_channels: int
    width: int
    stride: int
    num_classes: int
    weight: float


class Head(nn.Module):
    """`linear`: pool + linear. `bottleneck` (Be-Your-Own-Teacher): 1x1 conv, 3x3 conv (stride 2 when
    the attach point is finer than the final features), 1x1 conv to `width`, then pool + linear.
    Returns (logits, pooled features); the features feed self-distillation's hints."""

    def __init__(self, spec: HeadSpec):
        super().__init__()
        if spec.kind == "linear":
            self.body = nn.Identity()
            features = spec.in_channels
        else:
            self.body = nn.Sequential(
                conv_bn_relu(spec.in_channels, spec.width, kernel=1),
                conv_bn_relu(spec.width, spec.width, stride=spec.stride),
                conv_bn_relu(spec.width, spec.width, kernel=1),
            )
            features = spec.width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, spec.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.pool(self.body(x)).flatten(1)
        return self.fc(features), features


def build_heads(specs: list[HeadSpec]) -> nn.ModuleDict:
    return nn.ModuleDict({s.name: Head(s) for s in specs})


def auto_attach(trace: list[tuple[str, tuple[int, ...]]]) -> list[str]:
    """The output of each stage of the network: at each spatial size, the last of the outermost
    modules working at that size (so a block's inner 1x1 conv never wins over the block), except at
    the final size, which the model's own classifier already reads."""
    at_size: dict[tuple[int, int], list[str]] = {}
    for name, shape in feature_maps(trace).items():
        at_size.setdefault(shape[2:], []).append(name)
    picks = []
    for names in list(at_size.values())[:-1]:
        outermost = min(n.count(".") for n in names)
        picks.append([n for n in names if n.count(".") == outermost][-1])
    return picks


def make_specs(
    model: nn.Module,
    input_shape: tuple[int, ...],
    attach: list[str] | Literal["auto"],
    kind: HeadKind,
    weights: list[float] | float,
    num_classes: int,
    field: str = "attach",
) -> list[HeadSpec]:
    """Head specs for `attach` points, checked against the model's real outputs."""
    trace = trace_outputs(model, input_shape)
    maps = feature_maps(trace)
    names = auto_attach(trace) if attach == "auto" else list(attach)
    if not names:
        raise StageError(f"{field}: auto found no intermediate stage (the model keeps one spatial size); name modules instead: {', '.join(maps)}")
    all_modules = dict(model.named_modules())
    unknown = [n for n in names if n not in all_modules]
    if unknown:
        raise StageError(f"{field}: no module named {', '.join(map(repr, unknown))} in the model; modules with a 4-D output: {', '.join(maps)}")
    not_maps = [n for n in names if n not in maps]
    if not_maps:
        shapes = {n: s for n, s in trace}
        detail = ", ".join(f"{n!r} outputs {list(shapes[n]) if n in shapes else 'nothing (never called)'}" for n in not_maps)
        raise StageError(f"{field}: a head needs a 4-D feature map (N, C, H, W): {detail}; modules with a 4-D output: {', '.join(maps)}")
    per_head = weights if isinstance(weights, list) else [weights] * len(names)
    if len(per_head) != len(names):
        raise StageError(f"weights: {len(per_head)} weights for {len(names)} heads ({', '.join(names)})")
    _, final = final_features(trace)
    return [
        HeadSpec(
            name=f"head{i + 1}",
            attach=name,
            kind=kind,
            in_channels=maps[name][1],
            width=final[1],
            stride=2 if maps[name][2] > final[2] else 1,
            num_classes=num_classes,
            weight=w,
        )
        for i, (name, w) in enumerate(zip(names, per_head))
    ]


class HeadedModel(nn.Module):
    """Backbone + heads (+ learned adapters that only training uses), with hooks that tap features.

    Use as a context manager, or call `close()`, so the hooks leave the backbone afterwards.
    """

    def __init__(
        self,
        backbone: nn.Module,
        heads: nn.ModuleDict | None = None,
        specs: list[HeadSpec] = (),
        taps: list[str] = (),
        classifier: str | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.heads = heads if heads is not None else nn.ModuleDict()
        self.adapters = nn.ModuleDict()
        self.specs = {s.name: s for s in specs}
        self.taps: dict[str, torch.Tensor] = {}
        self.head_logits: dict[str, torch.Tensor] = {}
        self.head_features: dict[str, torch.Tensor] = {}
        self.deep_features: torch.Tensor | None = None
        self._handles = []
        self._tapped: set[str] = set()
        for point in sorted({s.attach for s in specs} | set(taps)):
            self.tap(point)
        if classifier is not None:
            self.tap_classifier_input(classifier)

    def tap(self, name: str) -> None:
        """Keep the output of backbone module `name` in `taps[name]` on every forward."""
        if name in self._tapped:
            return

        def hook(_module, _inputs, output):
            self.taps[name] = output

        self._handles.append(dict(self.backbone.named_modules())[name].register_forward_hook(hook))
        self._tapped.add(name)

    def tap_classifier_input(self, name: str) -> None:
        """Keep the input of the backbone's classifier `name` (the pooled features) in `deep_features`."""
        if f"<{name}" in self._tapped:
            return
        self._handles.append(self.backbone.get_submodule(name).register_forward_pre_hook(self._classifier_input))
        self._tapped.add(f"<{name}")

    def _classifier_input(self, _module, inputs):
        self.deep_features = inputs[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.backbone(x)
        self.head_logits, self.head_features = {}, {}
        for name, head in self.heads.items():
            self.head_logits[name], self.head_features[name] = head(self.taps[self.specs[name].attach])
        return logits

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every output (the backbone's logits first, then each head's): what tracing must see."""
        logits = self(x)
        return (logits, *self.head_logits.values())

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._tapped = [], set()

    def __enter__(self) -> "HeadedModel":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def headed(state: ModelState, taps: list[str] = (), classifier: str | None = None) -> HeadedModel:
    """The state's backbone with its heads (if any) for training or tracing; close it after use."""
    specs = [HeadSpec.model_validate(s) for s in state.head_specs]
    return HeadedModel(state.model, state.heads, specs, taps=taps, classifier=classifier)
