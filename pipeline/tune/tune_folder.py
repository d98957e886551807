"""`runs/<name>-tune/`: where a study keeps its database, its trials' run folders, its stage store and its results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.tune.stage_store import StageStore

STUDY_FILE = "study.db"


@dataclass
class TuneFolder:
    """`runs/<name>-tune/`: the study's database, one run folder per trial, the stage store, the results."""

    path: Path

    @property
    def storage(self) -> str:
        return f"sqlite:///{(self.path / STUDY_FILE).resolve()}"

    def trial(self, number: int) -> Path:
        return self.path / "trials" / f"trial-{number:04d}"

    @property
    def store(self) -> StageStore:
        return StageStore(self.path / "stage-store")

    def tuned_recipe(self, device: str) -> Path:
        return self.path / f"tuned-{Path(device).stem}.yaml"
