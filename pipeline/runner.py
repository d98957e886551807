"""The runner: stages in order, each in its own folder, resumable.

It knows no stage by name, only the contract each registered (pipeline/stages/__init__.py).

Resume: stage i's fingerprint hashes its config, the fingerprint of stage i-1 (so, transitively, the
data, model and seed) and, for stages that use them, the device profiles. A stage folder counts as
finished only once its `state.json`, written last and atomically, holds the same fingerprint. A
re-run skips the longest finished prefix, loads the state it left, and deletes the folders after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import torch

from devices.on_device import measure
from pipeline.core import distributed
from pipeline.core.checkpoints import load_model, save_model, weights_digest
from pipeline.core.disk_space import disk_full, out_of_space
from pipeline.core.epoch_feed import EpochFeed, FeedListener
from pipeline.fingerprints import stage_fingerprints
from pipeline.core.errors import StageError, UserError
from pipeline.core.metrics import resolve
from pipeline.core.repeatable import make_repeatable
from pipeline.core.run_folder import RunFolder, StageFolder
from pipeline.core.run_log import run_log
from pipeline.core.state import ModelState
from pipeline.data.loading import load_data
from pipeline.deploy.profiles import load_profile
from pipeline.models.building import build_model
from pipeline.tasks import TASKS
from pipeline.tasks.base import check_labels
from pipeline.recipe import Recipe
from pipeline.reporting.report_json import StageRecord, build_report, environment
from pipeline.stages import STAGES
from pipeline.stages.base import StageContext
from pipeline.training.evaluation import size_figures
from pipeline.models.heads import HeadSpec, build_heads

log = logging.getLogger("compress")


def run_recipe(recipe: Recipe, out_dir: str | Path | None = None, *, fresh: bool = False, quiet: bool = False,
               listener: FeedListener | None = None,
               after_build: Callable[[dict], None] | None = None) -> dict:
    """Run (or resume) the recipe; returns the report, also written to `<out_dir>/report.json`.

    `listener` is told every training epoch's validation figure, numbered over the whole recipe, and
    each schedule's last (`core/epoch_feed.py`); it may raise to stop the run (a tune pruning a poor
    trial, or out of time).
    `after_build(figures)` is told the model's params, MACs and size as built, before any stage
    runs; it too may raise (a tune refusing a model too large for its limits before training it).

    Under torchrun every process calls this; rank 0 alone holds the run lock and writes the run
    folder, and returns the report (the other ranks return an empty dict)."""
    run = RunFolder(Path(out_dir) if out_dir else Path("runs") / recipe.name)
    device = pick_device(recipe.header.accelerator)
    make_repeatable(device, recipe.header.deterministic)
    ranks = distributed.join(device)
    try:
        if not ranks.main:
            return _run_locked(recipe, run, device, fresh, True, EpochFeed(listener), after_build)
        run.ensure_writable()
        with run.lock(), run_log(run.log_file):
            return _run_locked(recipe, run, device, fresh, quiet, EpochFeed(listener), after_build)
    finally:
        distributed.leave()


def _run_locked(recipe: Recipe, run: RunFolder, device: torch.device, fresh: bool, quiet: bool, feed: EpochFeed,
                after_build: Callable | None = None) -> dict:
    header = recipe.header
    main = distributed.world().main
    check_shared(run)
    profiles = [load_profile(d) for d in header.devices]
    data = load_data(header.data, header.seed)
    task = TASKS.get(header.task)
    if header.metric != "top1":
        log.info(f"metric: {header.metric} ({task.name}): every accuracy figure of this run, and its budgets, read it")
    check_labels(task, data.targets, data.description)
    ranks = distributed.world().size
    log.info(f"data: {data.description}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test; device {device}"
             + (f"; {ranks} processes" if ranks > 1 else ""))

    fingerprints = stage_fingerprints(recipe, [p.model_dump() for p in profiles])
    folders = [run.stage(i, entry.name) for i, entry in enumerate(recipe.stages)]
    done = distributed.once(lambda: 0 if fresh else finished_prefix(folders, fingerprints))
    if main:
        kept = {f.path for f in folders[:done]}
        for stale in run.stage_folders():
            if stale.path not in kept:
                shutil.rmtree(stale.path)
    distributed.barrier()

    torch.manual_seed(header.seed)
    model = build_model(header.model, data.input_shape[0], data.num_classes, load_checkpoint=done == 0)
    task.check_output(model, data.train.take(2)[0], data.num_classes, header.model.describe())
    if after_build:
        after_build(size_figures(model, data.input_shape))
    state = ModelState(model=model)
    if done:
        state = load_stage_state(folders[done - 1], model)
        log.info(f"resuming after {folders[done - 1].name}: {done} finished stage(s) skipped (use --fresh to redo them)")

    records = [StageRecord(entry.name, folder.name) for entry, folder in zip(recipe.stages, folders)]
    for record, folder in zip(records[:done], folders):
        record.status, record.seconds = "resumed", folder.saved_state()["seconds"]
        record.metrics = folder.metrics()
        feed.replay(record.metrics)
    recipe_meta = {"name": recipe.name, "sha256": recipe.sha256, "task": header.task, "metric": header.metric,
                   "train_on_validation": header.data.train_on_validation}
    env = environment()

    def report() -> dict:
        if not main:
            return {}
        data_ = build_report(recipe_meta, records, state.artifacts, run.artifact_hashes(state.artifacts), state.reference, state.devices, env)
        run.write_report(data_)
        return data_

    if main:
        run.write_recipe_header(header.model_dump(mode="json"))
    report()
    for i in range(done, len(recipe.stages)):
        entry, folder, record = recipe.stages[i], folders[i], records[i]
        spec = STAGES.get(entry.name)
        everyone = spec.trains_with(entry.config)
        with _stage_folder(folder, main) as stage_dir:
            ctx = StageContext(
                data=data, device=device, run_dir=run.path, stage_dir=stage_dir, seed=header.seed * 1000 + i,
                profiles=profiles, recipe_meta=recipe_meta, log=log, quiet=quiet,
                model_before=earlier_models(recipe, folders, i, data.input_shape[0], data.num_classes), metric=resolve(header.metric), task=task,
            )
            ctx.feed = feed.for_stage(ctx.metrics)
            torch.manual_seed(ctx.seed)
            log.info(f"[{i + 1}/{len(recipe.stages)}] {entry.name}: {spec.summary}" + ("" if everyone or ranks == 1 else " (rank 0 alone)"))
            started, widths_before = time.perf_counter(), [w["width"] for w in state.widths]
            weights_before = weights_digest(state.model) if main and not spec.changes_model else ""  # only what is checked
            try:
                if everyone or main:
                    with stage_peak_memory() as peak, (contextlib.nullcontext() if everyone else distributed.solo()):
                        state = spec.run(entry.config, state, ctx)
                broken = spec.broken_promises(weights_before, state) if main else []
                if broken:
                    raise StageError(f"{entry.name} broke what it declares ({'; '.join(broken)}): a bug in the stage, not in the recipe")
                if widths_before and not state.widths:
                    log.warning(
                        f"{entry.name} changed the weights after the nested widths {widths_before} were made, so they are dropped and only "
                        f"the full network ships; to ship every width, put {entry.name} before the stage that makes the widths"
                    )
                if main:
                    ctx.metrics["peak_rss_mb"] = peak()
                    record.status, record.seconds, record.metrics = "ran", round(time.perf_counter() - started, 3), ctx.metrics
                    save_stage_state(folder, state, ctx.metrics, fingerprints[i], record.seconds)
                    report()
            except BaseException as error:
                record.status = "failed"
                full = main and not isinstance(error, KeyboardInterrupt) and out_of_space(error, run.path)
                if full:
                    error = disk_full(error, run.path, stage_dir, [f.path for f in folders[:i]])
                try:
                    report()
                except OSError:  # a full disk may refuse the report too: the stage's own error is the one to show
                    log.debug("the failure report could not be written", exc_info=True)
                if full:
                    raise error from None
                raise
        distributed.barrier()
        if not main:  # what rank 0 committed, so every rank goes on from the same model and files
            state = load_stage_state(folder, state.model)
    return report()


def check_shared(run: RunFolder) -> None:
    """Every rank must read the run folder rank 0 writes (it loads each stage's result from it, and
    resumes from it): on several machines that means a shared filesystem. Checked before any work."""
    if distributed.world().size == 1:
        return
    probe = run.path / ".ranks-probe"

    def write_probe() -> str:
        token = uuid.uuid4().hex
        probe.write_text(token)
        return token

    token = distributed.once(write_probe)
    sees = probe.is_file() and probe.read_text() == token
    blind = [f"rank {rank} on {host}" for rank, host, ok in distributed.gather((distributed.world().rank, socket.gethostname(), sees)) or [] if not ok]
    blind = distributed.broadcast(blind)
    if distributed.world().main:
        probe.unlink()
    if blind:
        raise UserError(
            f"the run folder {run.path.resolve()} is not shared by every process: {', '.join(blind)} cannot read what rank 0 writes "
            "there. On several machines put --out on a filesystem they all mount (NFS, a cluster's shared disk)."
        )


@contextlib.contextmanager
def _stage_folder(folder: StageFolder, main: bool):
    """The stage's folder on rank 0; a scratch folder elsewhere, so that only rank 0 writes the run."""
    if main:
        folder.path.mkdir(parents=True)
        yield folder.path
        return
    with tempfile.TemporaryDirectory(prefix="compress-rank-") as scratch:
        (Path(scratch) / folder.name).mkdir()
        yield Path(scratch) / folder.name


def finished_prefix(folders: list[StageFolder], fingerprints: list[str]) -> int:
    """How many stages, from the first, finished with today's fingerprint and untouched files; says
    why the next one runs again when it had finished before."""
    for i, (folder, fingerprint) in enumerate(zip(folders, fingerprints)):
        reason = folder.why_not_finished(fingerprint)
        if reason is not None:
            if (folder.path / StageFolder.STATE).exists():
                log.warning(f"re-running from {folder.name}: {reason}")
            return i
    return len(folders)


@contextlib.contextmanager
def stage_peak_memory():
    """Yields a function giving the process's peak resident memory (MB) since the stage began.

    On Linux the kernel's high-water mark is reset first (/proc/self/clear_refs), so each stage gets
    its own peak; elsewhere the figure is the process's peak so far (never less than the stage's)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    yield lambda: None if (mb := measure.peak_memory_mb()) is None else round(mb, 1)


def earlier_models(recipe: Recipe, folders: list[StageFolder], current: int, in_channels: int, num_classes: int):
    """`model_before(name)`: the backbone as it entered the last stage called `name` before stage
    `current`, rebuilt from the recipe and loaded from the folder before it (a teacher for `distill`)."""

    def model_before(name: str) -> torch.nn.Module:
        earlier = [j for j in range(current) if recipe.stages[j].name == name]
        if not earlier:
            before = ", ".join(e.name for e in recipe.stages[:current]) or "none"
            raise StageError(f"before:{name}: no `{name}` stage runs before this one (stages before it: {before})")
        j = earlier[-1]
        with torch.random.fork_rng():
            torch.manual_seed(recipe.header.seed)  # the same initial weights the run started from
            model = build_model(recipe.header.model, in_channels, num_classes, load_checkpoint=j == 0)
        return model if j == 0 else load_model(model, folders[j - 1].model_file)

    return model_before


def save_stage_state(folder: StageFolder, state: ModelState, metrics: dict, fingerprint: str, seconds: float) -> None:
    save_model(state.model, folder.model_file)
    if state.heads is not None:
        save_model(state.heads, folder.heads_file)
    folder.commit(metrics, state.to_json(), fingerprint, seconds)


def load_stage_state(folder: StageFolder, model: torch.nn.Module) -> ModelState:
    saved = folder.saved_state()
    specs = saved.get("head_specs") or []
    heads = load_model(build_heads([HeadSpec.model_validate(s) for s in specs]), folder.heads_file) if specs else None
    return ModelState.from_json(saved, load_model(model, folder.model_file), heads)


def pick_device(accelerator: str) -> torch.device:
    """The CPU, or (under torchrun, this process's) CUDA device."""
    if accelerator == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        gpus, processes = torch.cuda.device_count(), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if processes > gpus:
            # NCCL refuses two ranks on one GPU ("Duplicate GPU detected") only once the first
            # collective runs, deep in a stage; say so before anything starts
            raise UserError(
                f"{processes} processes were started on this machine but it has {gpus} GPU(s): on CUDA each "
                f"process needs a GPU of its own. Start at most {gpus} (--nproc {gpus}, or torchrun "
                f"--nproc-per-node {gpus}), or set accelerator: cpu in the recipe to train on the CPUs."
            )
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % gpus)
    if accelerator == "cuda":
        log.warning("accelerator: cuda was asked but no CUDA device is available; training on the CPU")
    return torch.device("cpu")
