"""Every training epoch's validation figure, numbered over a whole run, for whoever listens (a tune's
pruner and its clock)."""

from __future__ import annotations

from typing import Protocol


class FeedListener(Protocol):
    """What a run tells while it trains; either method may raise to stop the run."""

    def epoch(self, step: int, value: float) -> None:
        """After every epoch: `step` counts the epochs over the whole recipe, 1, 2, 3, …"""

    def schedule_end(self, step: int, value: float) -> None:
        """Where a training schedule ends (train's last epoch, each recovery round's), with the figure
        the model leaves it with. Mid-schedule figures rank trials wrongly: a one-cycle schedule near its
        peak learning rate trails one that has annealed, yet often finishes ahead; here every schedule
        has annealed. `step` is the epochs run so far, over the whole recipe."""


class StageFeed:
    """One stage's side of the feed: training tells it each epoch and each schedule's end, it keeps
    them in the stage's metrics (so a replay tells the same) and passes them on."""

    def __init__(self, feed: EpochFeed, metrics: dict):
        self.feed, self.metrics = feed, metrics

    def epoch(self, value: float) -> None:
        kept = round(value, 5)  # what a replay will tell, so a resumed run and a fresh one report alike
        self.metrics.setdefault(EpochFeed.EPOCHS, []).append(kept)
        self.feed.tell_epoch(kept)

    def schedule_end(self, value: float) -> None:
        kept = round(value, 5)
        self.metrics.setdefault(EpochFeed.SCHEDULE_ENDS, []).append([len(self.metrics.get(EpochFeed.EPOCHS, [])), kept])
        self.feed.tell_schedule_end(kept)


class EpochFeed:
    """Numbers every training epoch of a run 1, 2, 3, … across its stages and passes each figure on.
    A finished stage that is skipped (resumed, or taken from a tune's stage store) replays the figures
    it recorded, so an epoch has the same number in every run of the recipe and a pruner compares like
    with like."""

    EPOCHS = "val_per_epoch"  # in each stage's metrics: every epoch's figure
    SCHEDULE_ENDS = "val_at_schedule_ends"  # [epochs of this stage so far, figure] where a schedule ended

    def __init__(self, listener: FeedListener | None):
        self.listener, self.step = listener, 0

    def replay(self, metrics: dict) -> None:
        ends = {}
        for epochs, value in metrics.get(self.SCHEDULE_ENDS, []):
            ends.setdefault(epochs, []).append(value)
        for count, value in enumerate(metrics.get(self.EPOCHS, []), 1):
            self.tell_epoch(value)
            for end in ends.get(count, []):
                self.tell_schedule_end(end)

    def for_stage(self, metrics: dict) -> StageFeed:
        return StageFeed(self, metrics)

    def tell_epoch(self, value: float) -> None:
        self.step += 1
        if self.listener is not None:
            self.listener.epoch(self.step, value)

    def tell_schedule_end(self, value: float) -> None:
        if self.listener is not None:
            self.listener.schedule_end(self.step, value)
