"""The one training loop. Stages that train (train, prune's recovery, aux heads, self-distillation,
distillation) call `fit` with a `TrainConfig` and an `objective` that returns named loss terms, instead
of copying the loop. The terms are summed for the gradient and logged one by one per epoch, so a
report shows what each term contributed."""

from __future__ import annotations

import copy
import math
from typing import Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from pipeline.core.errors import StageError
from pipeline.core.progress import progress
from pipeline.data import DataSplits
from pipeline.training.augment import Augment, augment, mixed
from pipeline.training.evaluation import accuracy
from pipeline.training.objectives import Batch, Objective, cross_entropy


class TrainConfig(BaseModel):
    """Optimiser, schedule and regularisation for one call of the training loop."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=0)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(3e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    label_smoothing: float = Field(0.05, ge=0, lt=1)
    augment: Augment = Field(default_factory=Augment)
    batch_size: int | None = Field(None, ge=1, description="default: data.batch_size")
    early_stopping_patience: int | None = Field(None, ge=1, description="stop after this many epochs without a better validation accuracy, keeping the best weights")


def fit(
    model: nn.Module,
    data: DataSplits,
    cfg: TrainConfig,
    *,
    device: torch.device,
    generator: torch.Generator,
    desc: str = "train",
    quiet: bool = False,
    objective: Objective | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict]:
    """Train `model` in place; returns one row per epoch with the mean of each loss term and validation accuracy.

    `objective` defaults to cross-entropy with the config's label smoothing.
    """
    objective = objective or cross_entropy(cfg.label_smoothing)
    model.to(device)
    if cfg.epochs == 0:
        return []
    batch = cfg.batch_size or data.batch_size
    steps_per_epoch = math.ceil(len(data.train) / batch)
    optimizer = _optimizer(model, cfg)
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch * cfg.epochs)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1).to(device) for v in (data.mean, data.std))
    history, best, best_state, stale = [], -1.0, None, 0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(data.train), generator=generator)
        total_loss, term_sums = 0.0, {}
        bar = progress(data.train.batches(batch, order), total=steps_per_epoch, desc=f"{desc} {epoch + 1}/{cfg.epochs}", quiet=quiet)
        for step, (x, y, idx) in enumerate(bar):
            x, y = x.to(device), y.to(device)
            x = augment(x, cfg.augment, mean, std, generator)
            x, mix = mixed(x, y, cfg.augment, generator)
            terms = objective(Batch(x=x, y=y, idx=idx, logits=model(x), epoch=epoch, epochs=cfg.epochs, mix=mix))
            loss = sum(terms.values())
            if not torch.isfinite(loss):
                raise StageError(f"{desc}: loss is {loss.item()} at epoch {epoch + 1} step {step + 1} (terms: {_round(terms)}); lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_value = loss.item()
            total_loss += loss_value
            for name, value in terms.items():  # detached tensors: one host sync per term per epoch, not per step
                term_sums[name] = term_sums.get(name, 0.0) + value.detach()
            bar.set_postfix(loss=f"{loss_value:.3f}")
        val_acc = accuracy(model, data.val, device=device)
        terms_mean = {name: round(float(v) / steps_per_epoch, 5) for name, v in term_sums.items()}
        history.append({"epoch": epoch + 1, "loss": round(total_loss / steps_per_epoch, 5), "terms": terms_mean, "val_accuracy": round(val_acc, 5)})
        log(f"{desc} epoch {epoch + 1}/{cfg.epochs}: loss {total_loss / steps_per_epoch:.4f}, val acc {val_acc:.4f}")
        if cfg.early_stopping_patience is not None:
            if val_acc > best:
                best, best_state, stale = val_acc, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= cfg.early_stopping_patience:
                    log(f"{desc}: early stop after epoch {epoch + 1}, best val acc {best:.4f}")
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _round(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: round(v.item(), 4) for k, v in terms.items()}
