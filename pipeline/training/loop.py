"""The one training loop. Stages that train (train, prune's recovery, aux heads, self-distillation,
distillation) call `fit` with a `TrainConfig` and an `objective` that returns named loss terms, instead
of copying the loop. The terms are summed for the gradient and logged one by one per epoch, so a
report shows what each term contributed.

Under torchrun every rank runs `fit` together, as DistributedDataParallel: a `DistributedSampler`
gives each rank every `size`-th sample of one shared permutation, and the batch size of the recipe
is the *global* batch, split across the ranks. So step k of an N-process run trains on the same
samples, with the same learning rate, as step k of a one-process run: the recipe means the same
training however many processes run it, and a run may resume with a different number. To train a
larger global batch, raise `batch_size` and scale `lr` with it (linearly for SGD; for AdamW, by
the square root is the safer start).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from typing import Callable, Iterator, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from pipeline.core import distributed
from pipeline.core.errors import StageError
from pipeline.core.metrics import Metric, label_of, top1
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
    batch_size: int | None = Field(None, ge=1, description="the global batch, split across processes under torchrun; default: data.batch_size")
    sync_batchnorm: bool = Field(False, description="under torchrun on CUDA: BatchNorm statistics over the global batch, not each process's share")
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
    metric: Metric = top1,
    after_epoch: Callable[[float], None] | None = None,
    augment_batch: Callable | None = None,
) -> list[dict]:
    """Train `model` in place; returns one row per epoch with the mean of each loss term, validation
    accuracy (the recipe's `metric`, which early stopping also reads), and the seconds spent training
    and validating (so a slow epoch shows where it went).

    `objective` defaults to cross-entropy with the config's label smoothing. `after_epoch` is told
    each epoch's validation figure and may raise to end the training (a tune pruning a poor trial).
    `augment_batch(x, y, cfg.augment, mean, std, generator) -> (x, y, mix)` is the task's
    augmentation (default: classification's, `augment` then `mixed`); a detection task moves the
    boxes with the pixels.
    """
    objective = objective or cross_entropy(cfg.label_smoothing)
    model.to(device)
    if cfg.epochs == 0:
        return []
    ranks = distributed.world()
    global_batch = cfg.batch_size or data.batch_size
    batch = math.ceil(global_batch / ranks.size)
    seed = int(torch.randint(2**62, (1,), generator=generator))  # the same on every rank: one shared order
    sampler = DistributedSampler(data.train.dataset, num_replicas=ranks.size, rank=ranks.rank, shuffle=True, seed=seed)
    draws = torch.Generator().manual_seed(seed + 1 + ranks.rank)  # augmentation: each rank its own
    steps_per_epoch = math.ceil(len(sampler) / batch)
    if ranks.size > 1:
        log(f"{desc}: {ranks.size} processes x {batch} samples = global batch {batch * ranks.size} (recipe: {global_batch}), lr {cfg.lr:g} as in the recipe")
    optimizer = _optimizer(model, cfg)
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch * cfg.epochs)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1).to(device) for v in (data.mean, data.std))
    history, best, best_state, stale = [], -1.0, None, 0
    label = label_of(metric)  # "acc" for top-1, "mAP" for a detector's coco_map
    with _parallel(_Step(model, objective), cfg, device, ranks.size) as step_fn:
        for epoch in range(cfg.epochs):
            model.train()
            started = time.perf_counter()
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler), dtype=torch.int64)
            total_loss, term_sums = 0.0, {}
            bar = progress(None, total=len(order), desc=f"{desc} {epoch + 1}/{cfg.epochs}", quiet=quiet, unit="img")  # images/s and time left
            for step, (x, y, idx) in enumerate(data.train.batches(batch, order)):
                x, y = x.to(device), y.to(device)
                if augment_batch is None:
                    x = augment(x, cfg.augment, mean, std, draws)
                    x, mix = mixed(x, y, cfg.augment, draws)
                else:
                    x, y, mix = augment_batch(x, y, cfg.augment, mean, std, draws)
                terms = step_fn(x, y, idx, mix, epoch, cfg.epochs)
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
                bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
                bar.update(len(x))
            bar.close()
            distributed.same_weights(model)  # rank 0's BatchNorm statistics everywhere, so every rank scores one model
            trained = time.perf_counter()
            val_acc = accuracy(model, data.val, metric=metric)
            epoch_loss, terms_mean = _epoch_means(total_loss, term_sums, steps_per_epoch)
            history.append({"epoch": epoch + 1, "loss": epoch_loss, "terms": terms_mean, "val_accuracy": round(val_acc, 5),
                            "train_seconds": round(trained - started, 3), "val_seconds": round(time.perf_counter() - trained, 3)})
            log(f"{desc} epoch {epoch + 1}/{cfg.epochs}: loss {epoch_loss:.4f}, val {label} {val_acc:.4f} "
                f"({history[-1]['train_seconds']:.1f} s training, {history[-1]['val_seconds']:.1f} s validating)")
            if after_epoch is not None:
                after_epoch(val_acc)
            if cfg.early_stopping_patience is not None:  # val_acc is the same on every rank, so they stop together
                if val_acc > best:
                    best, best_state, stale = val_acc, copy.deepcopy(model.state_dict()), 0
                else:
                    stale += 1
                    if stale >= cfg.early_stopping_patience:
                        log(f"{desc}: early stop after epoch {epoch + 1}, best val {label} {best:.4f}")
                        break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def schedule_end_figure(history: list[dict], cfg: TrainConfig) -> float:
    """The validation figure of the model `fit` leaves: its last epoch's, or under early stopping
    the best epoch's, whose weights `fit` restores (the rule lives here, beside that restore)."""
    values = [row["val_accuracy"] for row in history]
    return max(values) if cfg.early_stopping_patience is not None else values[-1]


class _Step(nn.Module):
    """The model and the objective as one module, so that everything the loss trains (the model, its
    heads and adapters) is used inside one forward: DistributedDataParallel averages the gradients
    of exactly what that forward used."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model = model
        self._objective = (objective,)  # not a submodule: a teacher inside it is not trained

    def forward(self, x, y, idx, mix, epoch: int, epochs: int) -> dict[str, torch.Tensor]:
        return self._objective[0](Batch(x=x, y=y, idx=idx, logits=self.model(x), epoch=epoch, epochs=epochs, mix=mix))


@contextlib.contextmanager
def _parallel(step: _Step, cfg: TrainConfig, device: torch.device, ranks: int) -> Iterator[nn.Module]:
    """`step` itself in one process; wrapped in DistributedDataParallel under torchrun (with
    SyncBatchNorm when asked, turned back into plain BatchNorm afterwards for export and pruning)."""
    if ranks == 1:
        yield step
        return
    originals = {}
    if cfg.sync_batchnorm:
        if device.type != "cuda":
            raise StageError("sync_batchnorm: true needs CUDA (torch's SyncBatchNorm has no CPU kernel); set it false to train on CPUs")
        originals = {name: type(m) for name, m in step.model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        nn.SyncBatchNorm.convert_sync_batchnorm(step.model)
    # static_graph: an objective may leave a head or an adapter out of every step (DDP would otherwise
    # wait for its gradient), and the set it uses stays the same for the whole call, which DDP checks
    wrapped = DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True)
    try:
        yield wrapped
    finally:
        if originals:
            _restore_batchnorm(step.model, originals)


def _restore_batchnorm(model: nn.Module, originals: dict[str, type]) -> None:
    """Replace each SyncBatchNorm by the BatchNorm class it was, with its weights and statistics."""
    for name, kind in originals.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        synced = getattr(parent, child)
        plain = kind(synced.num_features, synced.eps, synced.momentum, synced.affine, synced.track_running_stats)
        plain.load_state_dict(synced.state_dict())
        setattr(parent, child, plain.to(next(synced.parameters(), synced.running_mean).device))


def _epoch_means(total_loss: float, term_sums: dict, steps: int) -> tuple[float, dict[str, float]]:
    """The epoch's mean loss and terms over every rank's batches (this rank's alone in one process)."""
    sums = torch.tensor([total_loss, *(float(v) for v in term_sums.values())], dtype=torch.float64)
    sums = distributed.all_sum(sums) / distributed.world().size / steps
    return round(float(sums[0]), 5), {name: round(float(v), 5) for name, v in zip(term_sums, sums[1:])}


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
