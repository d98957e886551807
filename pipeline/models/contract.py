"""The model contract, checked with one forward pass on real samples before the first stage runs.

The pipeline needs a model that takes the data's images ([N, C, H, W]) and returns one logits tensor
[N, classes]. A model that wants other channels, returns a tuple or a dict, or predicts another number
of classes would otherwise fail deep inside training (or, worse, train on the wrong thing); here it
is one paragraph that names the model, the input shape and the fix.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.core.errors import UserError, what_failed


def forward_once(model: nn.Module, sample: torch.Tensor, what: str):
    """`model`'s output on `sample` (a few real images) in eval mode, its mode restored after; a
    failure is one paragraph naming the model, the input shape and, where it is the cause, the
    channel count its first conv takes. Every task's model check starts here."""
    shape = list(sample.shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(sample)
    except Exception as e:  # noqa: BLE001  user code may raise anything
        raise UserError(f"{what}: forward failed on a batch of the data's images, shape {shape}: {what_failed(e)}"
                        f"{_channel_hint(model, shape[1])} (--debug shows where)") from e
    finally:
        model.train(was_training)


def check_model(model: nn.Module, sample: torch.Tensor, num_classes: int, what: str) -> None:
    """Run `model` once on `sample` (a few real images) in eval mode; refuse what the pipeline cannot use."""
    shape = list(sample.shape)
    output = forward_once(model, sample, what)
    if isinstance(output, (tuple, list, dict)):
        kind = f"a dict with keys {list(output)}" if isinstance(output, dict) else f"a {type(output).__name__} of {len(output)}"
        raise UserError(
            f"{what}: forward returns {kind}; the pipeline needs one logits tensor [N, {num_classes}]. Wrap the model so "
            "forward returns the logits alone (e.g. `return self.net(x)[0]` or `return self.net(x)['logits']`); "
            "auxiliary outputs belong in an aux_heads stage"
        )
    if not isinstance(output, torch.Tensor):
        raise UserError(f"{what}: forward returns {type(output).__name__}, not a logits tensor [N, {num_classes}]")
    if tuple(output.shape) != (shape[0], num_classes):
        raise UserError(
            f"{what}: forward maps {shape} to {list(output.shape)}, but the data has {num_classes} classes: the output must be "
            f"[{shape[0]}, {num_classes}] (one logit per class; set the model's class count to {num_classes})"
        )


def _channel_hint(model: nn.Module, channels: int) -> str:
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first[1].in_channels != channels:
        return f". Its first conv `{first[0]}` takes {first[1].in_channels} channel(s) but the data's images have {channels}: build the model for {channels}-channel input"
    return ""
