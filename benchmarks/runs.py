"""How a benchmark runs the pipeline and reads what it left: one way for every script.

A run is the command a user types (`python -m pipeline run RECIPE --out DIR --quiet`) in a child
process, so its time and memory are the pipeline's own and nothing the benchmark imported is shared
with it. What it left is read through `RunFolder` (the report, each stage's folder and metrics), so
no script spells a stage folder's name.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.core.run_folder import RunFolder


class RunFailed(RuntimeError):
    """The run exited non-zero; the message ends with its error output."""


@dataclass
class Run:
    folder: RunFolder
    seconds: float | None = None  # wall clock of the whole command (None: read from a run made earlier)
    peak_rss_mb: float | None = None  # the command's peak resident memory, when asked for

    @property
    def path(self) -> Path:
        return self.folder.path

    def report(self) -> dict:
        return self.folder.report()

    def metrics(self, stage: str) -> dict:
        """metrics.json of the recipe's first stage called `stage`."""
        return self.folder.stage_of(stage).metrics()

    def file(self, stage: str, name: str) -> Path:
        return self.folder.stage_of(stage).path / name

    def stage_seconds(self, *stages: str) -> float:
        """The stages' own seconds (all of them by default): the report keeps them across a resume,
        so a rerun that resumes reports what they took, not the instant of skipping them."""
        rows = self.report()["stages"]
        return sum(row["seconds"] for row in rows if not stages or row["name"] in stages)


def run(recipe: dict, out: Path, *, fresh: bool = False, nproc: int | None = None, peak_rss: bool = False, timeout: float | None = None) -> Run:
    """Write `recipe` beside `out` (`out.yaml`) and run it into `out`; `RunFailed` if it fails."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recipe_file = out.with_suffix(".yaml")
    recipe_file.write_text(yaml.safe_dump(recipe, sort_keys=False))
    command = [sys.executable, "-m", "pipeline", "run", str(recipe_file), "--out", str(out), "--quiet"]
    command += ["--fresh"] * fresh + (["--nproc", str(nproc)] if nproc else [])
    if peak_rss:
        command = ["/usr/bin/time", "-f", "%M", *command]  # GNU time: the peak RSS in KiB, last line of stderr
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RunFailed(f"{recipe.get('name', recipe_file.name)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    rss = int(done.stderr.strip().splitlines()[-1]) / 1024 if peak_rss else None
    return Run(RunFolder(out), seconds, rss)


def finished(out: Path) -> Run | None:
    """A run made earlier into `out`, or None when it has no report yet."""
    folder = RunFolder(out)
    return Run(folder) if folder.report_file.is_file() else None
