"""Accuracy and size figures for a PyTorch model, computed the same way by every stage."""

from __future__ import annotations

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from pipeline.core import distributed
from pipeline.core.metrics import Metric, top1
from pipeline.data import DataSplits, Split
from pipeline.models.heads import HeadedModel


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, batch_size: int = 512, metric: Metric = top1) -> float:
    """The metric (top-1 accuracy unless given) of `model` on a whole split read in batches, on the
    device the model is on (stages keep models on the CPU between trainings; a caller naming a device
    could name the wrong one).

    Under torchrun each rank scores its shard; rank 0 computes the metric over all of them (a user's
    metric may need every logit, not a count) and every rank gets that one figure."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, labels = [], []
    for x, y, _ in split.batches(batch_size, distributed.shard(len(split))):
        logits.append(model(x.to(device)).float().cpu().numpy())
        labels.append(y.numpy())
    model.train(was_training)
    shards = distributed.gather((np.concatenate(logits), np.concatenate(labels)) if labels else None)
    return distributed.once(lambda: _score([s for s in shards if s is not None], metric))


def _score(shards: list[tuple[np.ndarray, np.ndarray]], metric: Metric) -> float:
    if not shards:
        return 0.0
    return metric(np.concatenate([logits for logits, _ in shards]), np.concatenate([labels for _, labels in shards]))


def size_figures(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Parameters, multiply-accumulates for one sample, and FP32 bytes of weights and buffers."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {"params": int(params), "macs": int(macs), "size_bytes": int(size)}


def model_metrics(model: nn.Module, data: DataSplits, metric: Metric = top1) -> dict:
    """Test accuracy (for the report), validation accuracy (what later choices compare against), size."""
    return {
        "accuracy": round(accuracy(model, data.test, metric=metric), 5),
        "val_accuracy": round(accuracy(model, data.val, metric=metric), 5),
        **size_figures(model, data.input_shape),
    }


@torch.no_grad()
def head_accuracy(model: HeadedModel, split, batch_size: int = 512) -> dict[str, float]:
    """Test accuracy of each head (and of the backbone, as `final`); under torchrun, each rank counts
    its shard and the counts are summed."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    names = [*model.heads, "final"]
    correct = torch.zeros(len(names), dtype=torch.float64)
    for x, y, _ in split.batches(batch_size, distributed.shard(len(split))):
        x, y = x.to(device), y.to(device)
        outputs = {"final": model(x), **model.head_logits}
        correct += torch.tensor([(outputs[n].argmax(1) == y).sum().item() for n in names], dtype=torch.float64)
    model.train(was_training)
    distributed.all_sum(correct)
    return {name: round(float(c) / max(1, len(split)), 5) for name, c in zip(names, correct)}
