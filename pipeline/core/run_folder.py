"""The run folder's layout, in one place: the runner writes through it, every reader reads through it.

```
runs/<name>/
  recipe.json        the recipe header (data, model, seed, devices): enough to rebuild data and model
  report.json        the contract CI reads (docs/report.md)
  run.log            every line the run logged (the libraries' warnings too); appended on resume
  01-train/          one folder per stage, NN-<stage name>
    model.pt         the weights (and pruned shapes) the stage left; heads.pt beside it when it had heads
    metrics.json     what the stage measured
    state.json       written last and atomically: the commit marker, with the fingerprint
    ...              the stage's own files (model.onnx, model.int8.onnx, ...)
```

A stage folder without `state.json` is unfinished. `state.json` records the SHA-256 of every file
the stage left, and `report.json` that of every deployable file: a resumed run re-runs from the
first stage whose files changed or vanished, and gate, bundle, calibration and the human report
refuse a run whose files no longer match (`IntegrityError`). `.lock` keeps a second `compress run`
out of a folder in use. Readers reach a finished run only through `RunFolder`, so a change of
layout is a change of this file.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from devices.on_device.bundle_files import sha256
from pipeline.core.errors import IntegrityError, UserError
from pipeline.core.output_paths import writable_folder

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a second run into one folder is not caught there
    fcntl = None


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temporary file beside the target, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`, or a `UserError` naming the file and what it should have been."""
    try:
        document = json.loads(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not JSON ({e}); it should be {what}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path} holds a JSON {type(document).__name__}, not the object {what} is")
    return document


class StageFolder:
    """`NN-<stage>/`: the files one stage left."""

    STATE, METRICS, MODEL, HEADS = "state.json", "metrics.json", "model.pt", "heads.pt"

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_file(self) -> Path:
        return self.path / self.MODEL

    @property
    def heads_file(self) -> Path:
        return self.path / self.HEADS

    def finished_with(self, fingerprint: str) -> bool:
        return self.why_not_finished(fingerprint) is None

    def why_not_finished(self, fingerprint: str) -> str | None:
        """None when committed by a stage with this fingerprint (same config, same input) and every
        file it recorded is unchanged; else why it must run again."""
        try:
            saved = json.loads((self.path / self.STATE).read_text())
        except (OSError, ValueError):
            return "it did not finish"
        if not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
            return "its recipe entry or what it received changed"
        return self.file_problem(saved)

    def file_problem(self, saved: dict) -> str | None:
        """The first recorded file that vanished or changed since the stage finished, said in words."""
        files = saved.get("files")
        if not isinstance(files, dict):
            return "its state records no file hashes (written by an older version), so its files cannot be trusted"
        for name, digest in files.items():
            path = self.path / name
            if not path.is_file():
                return f"{self.name}/{name} is missing"
            if sha256(path) != digest:
                return f"{self.name}/{name} changed since the stage wrote it (SHA-256 differs)"
        return None

    def saved_state(self) -> dict:
        return read_json(self.path / self.STATE, "a stage's state")

    def metrics(self) -> dict:
        return read_json(self.path / self.METRICS, "a stage's metrics")

    def commit(self, metrics: dict, state: dict, fingerprint: str, seconds: float) -> None:
        """Metrics first, then the commit marker with every file's hash: a crash in between leaves
        an unfinished stage."""
        write_json_atomic(self.path / self.METRICS, metrics)
        files = {p.relative_to(self.path).as_posix(): sha256(p) for p in sorted(self.path.rglob("*")) if p.is_file() and p.name != self.STATE}
        write_json_atomic(self.path / self.STATE, {"fingerprint": fingerprint, "seconds": seconds, **state, "files": files})


class RunFolder:
    """`runs/<name>/`: the report, the recipe header and the stage folders of one run."""

    REPORT, RECIPE, LOG = "report.json", "recipe.json", "run.log"
    STAGE_PATTERN = "[0-9][0-9]-*"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def report_file(self) -> Path:
        return self.path / self.REPORT

    @property
    def log_file(self) -> Path:
        """Every line the run logged, the libraries' warnings included (`core/run_log.py`)."""
        return self.path / self.LOG

    def stage(self, index: int, name: str) -> StageFolder:
        """The folder of stage `index` (0-based) called `name`."""
        return StageFolder(self.path / f"{index + 1:02d}-{name}")

    def stage_named(self, folder: str) -> StageFolder:
        return StageFolder(self.path / folder)

    def stage_folders(self) -> list[StageFolder]:
        return [StageFolder(p) for p in sorted(self.path.glob(self.STAGE_PATTERN)) if p.is_dir()]

    def stage_of(self, name: str) -> StageFolder:
        """The folder of the recipe's first stage called `name` (`prune` -> 02-prune), as the report lists them."""
        stages = self.report()["stages"]
        folders = [s["folder"] for s in stages if s["name"] == name]
        if not folders:
            names = ", ".join(s["name"] for s in stages) or "none"
            raise UserError(f"{self.path}: the run has no {name} stage (its stages: {names})")
        return self.stage_named(folders[0])

    def resolve(self, ref: str) -> Path:
        """A path kept in a state or report (relative to the run folder) as a real path."""
        return self.path / ref

    def ensure_writable(self) -> None:
        writable_folder(self.path, "--out DIR")

    def report(self) -> dict:
        if not self.report_file.is_file():
            raise UserError(f"no report at {self.report_file}: run `compress run RECIPE` first (or give the run folder)")
        return read_json(self.report_file, "a run report")

    def write_report(self, report: dict) -> None:
        write_json_atomic(self.report_file, report)

    def recipe_header(self) -> dict:
        """The recipe's header as the run saved it: `data`, `model`, `seed`, `devices`, …"""
        return read_json(self.path / self.RECIPE, "the run's recipe header")

    def write_recipe_header(self, header: dict) -> None:
        write_json_atomic(self.path / self.RECIPE, header)

    def artifacts(self) -> dict[str, Path]:
        """The deployable files the report names (`onnx_fp32`, `onnx_int8`), as paths, each checked
        against the hash the report recorded for it."""
        report = self.report()
        files = {name: self.resolve(ref) for name, ref in (report.get("artifacts") or {}).items() if ref}
        self.verify(report)
        return files

    def artifact_hashes(self, artifacts: dict[str, str]) -> dict[str, str]:
        """SHA-256 of each deployable file (paths relative to the run), for the report to record."""
        return {name: sha256(self.resolve(ref)) for name, ref in artifacts.items() if ref and self.resolve(ref).is_file()}

    def verify(self, report: dict) -> None:
        """Refuse a run whose files changed since they were written: every finished stage's recorded
        files, and every deployable file against the hash in `report` (the run's report.json as read)."""
        problems = []
        for stage in report.get("stages") or []:
            if isinstance(stage, dict) and stage.get("status") in ("ran", "resumed"):
                folder = self.stage_named(str(stage.get("folder")))
                problem = folder.file_problem(folder.saved_state())
                if problem:
                    problems.append(problem)
        recorded = report.get("artifact_sha256") or {}
        for name, ref in (report.get("artifacts") or {}).items():
            if not ref:
                continue
            path = self.resolve(ref)
            if name not in recorded:
                problems.append(f"report.json records no hash for {name} ({ref})")
            elif not path.is_file():
                problems.append(f"{ref} ({name}) is missing")
            elif sha256(path) != recorded[name]:
                problems.append(f"{ref} ({name}) changed since the run wrote it (SHA-256 differs from report.json)")
        if problems:
            raise IntegrityError(
                f"{self.path}: files of this run changed after it finished, so its figures no longer describe them: "
                + "; ".join(dict.fromkeys(problems)) + ". Run `compress run RECIPE` again to rebuild what changed."
            )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold `.lock` while a run writes here; a second run into the same folder is refused. The
        lock is the kernel's (flock), so a killed run never leaves a stale one behind."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise UserError(f"{self.path} is in use by another `compress run` ({holder}); wait for it, or give this run another --out") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield
