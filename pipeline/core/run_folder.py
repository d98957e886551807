"""The run folder's layout, in one place: the runner writes through it, every reader reads through it.

```
runs/<name>/
  recipe.json        the recipe header (data, model, seed, devices): enough to rebuild data and model
  report.json        the contract CI reads (docs/report.md)
  01-train/          one folder per stage, NN-<stage name>
    model.pt         the weights (and pruned shapes) the stage left; heads.pt beside it when it had heads
    metrics.json     what the stage measured
    state.json       written last and atomically: the commit marker, with the fingerprint
    ...              the stage's own files (model.onnx, model.int8.onnx, ...)
```

A stage folder without `state.json` is unfinished. Gate, bundle, calibration and the human report
read a finished run only through `RunFolder`, so a change of layout is a change of this file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.core.errors import UserError


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
        """Committed, and by a stage with this fingerprint (same config, same input)."""
        try:
            return json.loads((self.path / self.STATE).read_text())["fingerprint"] == fingerprint
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def saved_state(self) -> dict:
        return read_json(self.path / self.STATE, "a stage's state")

    def metrics(self) -> dict:
        return read_json(self.path / self.METRICS, "a stage's metrics")

    def commit(self, metrics: dict, state: dict, fingerprint: str, seconds: float) -> None:
        """Metrics first, then the commit marker: a crash in between leaves an unfinished stage."""
        write_json_atomic(self.path / self.METRICS, metrics)
        write_json_atomic(self.path / self.STATE, {"fingerprint": fingerprint, "seconds": seconds, **state})


class RunFolder:
    """`runs/<name>/`: the report, the recipe header and the stage folders of one run."""

    REPORT, RECIPE = "report.json", "recipe.json"
    STAGE_PATTERN = "[0-9][0-9]-*"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def report_file(self) -> Path:
        return self.path / self.REPORT

    def stage(self, index: int, name: str) -> StageFolder:
        """The folder of stage `index` (0-based) called `name`."""
        return StageFolder(self.path / f"{index + 1:02d}-{name}")

    def stage_named(self, folder: str) -> StageFolder:
        return StageFolder(self.path / folder)

    def stage_folders(self) -> list[StageFolder]:
        return [StageFolder(p) for p in sorted(self.path.glob(self.STAGE_PATTERN)) if p.is_dir()]

    def resolve(self, ref: str) -> Path:
        """A path kept in a state or report (relative to the run folder) as a real path."""
        return self.path / ref

    def ensure_writable(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-probe"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UserError(f"cannot write to the output folder {self.path}: {e.strerror or e}. Choose another with --out DIR.") from None

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
        """The deployable files the report names (`onnx_fp32`, `onnx_int8`), as paths."""
        return {name: self.resolve(ref) for name, ref in (self.report().get("artifacts") or {}).items() if ref}
