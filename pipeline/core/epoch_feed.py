"""Every training epoch's validation figure, numbered over a whole run, for whoever listens (a tune's pruner)."""

from __future__ import annotations

from typing import Callable


class EpochFeed:
    """Numbers every training epoch of a run 1, 2, 3, … across its stages and passes its validation
    figure on. A finished stage that is skipped (resumed, or taken from a tune's stage store) replays
    the figures it recorded, so an epoch has the same number in every run of the recipe and a pruner
    compares like with like."""

    KEY = "val_per_epoch"  # in each stage's metrics

    def __init__(self, observer: Callable[[int, float], None] | None):
        self.observer, self.step = observer, 0

    def replay(self, metrics: dict) -> None:
        for value in metrics.get(self.KEY, []):
            self._tell(value)

    def for_stage(self, metrics: dict) -> Callable[[float], None]:
        def after_epoch(value: float) -> None:
            kept = round(value, 5)  # what a replay will tell, so a resumed run and a fresh one report alike
            metrics.setdefault(self.KEY, []).append(kept)
            self._tell(kept)

        return after_epoch

    def _tell(self, value: float) -> None:
        self.step += 1
        if self.observer is not None:
            self.observer(self.step, value)
