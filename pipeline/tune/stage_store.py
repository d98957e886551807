"""Finished stages kept by fingerprint, so trials that share their first stages run them once.

A stage's fingerprint already chains the data, the model, the seed and every earlier stage's
config (`pipeline/fingerprints.py`), so two trials whose first k stages have the same fingerprints
would compute the same k stages. Before a trial runs, the longest such prefix found in the store is
copied into its run folder (hard links where the filesystem allows: no second copy of the bytes),
and the runner resumes after it exactly as it resumes any run, checking each file's SHA-256. After a
trial, its finished stages not yet in the store are added, each by an atomic rename, so two workers
that finish the same stage at once leave one intact copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from pipeline.core.run_folder import StageFolder


class StageStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def entry(self, fingerprint: str) -> Path:
        return self.path / fingerprint

    def has(self, fingerprint: str) -> bool:
        return StageFolder(self.entry(fingerprint)).finished_with(fingerprint)

    def seed_run(self, stage_dirs: list[Path], fingerprints: list[str]) -> int:
        """Copy the longest stored prefix into a trial's stage folders; returns how many stages it holds."""
        count = 0
        for folder, fingerprint in zip(stage_dirs, fingerprints):
            if not self.has(fingerprint):
                break
            if not StageFolder(folder).finished_with(fingerprint):
                shutil.rmtree(folder, ignore_errors=True)
                _copy(self.entry(fingerprint), folder)
            count += 1
        return count

    def keep(self, stage_dirs: list[Path], fingerprints: list[str]) -> int:
        """Add a trial's finished stages that the store lacks; returns how many were added."""
        added = 0
        for folder, fingerprint in zip(stage_dirs, fingerprints):
            if not StageFolder(folder).finished_with(fingerprint):
                break
            if self.has(fingerprint):
                continue
            self.path.mkdir(parents=True, exist_ok=True)
            partial = self.path / f".{fingerprint}.{uuid.uuid4().hex}"
            _copy(folder, partial)
            try:
                os.rename(partial, self.entry(fingerprint))
                added += 1
            except OSError:  # another worker stored it first: its copy is as good
                shutil.rmtree(partial, ignore_errors=True)
        return added

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file()) if self.path.is_dir() else 0


def _copy(source: Path, target: Path) -> None:
    """Hard links where possible (stage files are never written again once committed), else copies."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)
