"""The feed a tune listens to: epochs numbered over the run, schedule ends told where they fell, and a
skipped stage replaying exactly what it told, in the same order (a pruner compares like with like)."""

from pipeline.core.epoch_feed import EpochFeed
from tests.core.feed_recorder import Recorder


def two_stages(feed: EpochFeed) -> list[dict]:
    """A train stage of 2 epochs, then a prune stage of 2 rounds of 1 recovery epoch."""
    train, prune = {}, {}
    stage = feed.for_stage(train)
    stage.epoch(0.5)
    stage.epoch(0.612345678)
    stage.schedule_end(0.612345678)
    stage = feed.for_stage(prune)
    for value in (0.55, 0.58):
        stage.epoch(value)
        stage.schedule_end(value)
    return [train, prune]


def test_epochs_are_numbered_over_the_run_and_each_schedule_end_carries_the_epochs_so_far():
    recorder = Recorder()
    two_stages(EpochFeed(recorder))
    assert recorder.told == [("epoch", 1, 0.5), ("epoch", 2, 0.61235), ("end", 2, 0.61235),
                             ("epoch", 3, 0.55), ("end", 3, 0.55), ("epoch", 4, 0.58), ("end", 4, 0.58)]


def test_a_replayed_stage_tells_what_it_recorded_in_the_order_it_told_it():
    fresh = Recorder()
    metrics = two_stages(EpochFeed(fresh))
    assert metrics[0] == {"val_per_epoch": [0.5, 0.61235], "val_at_schedule_ends": [[2, 0.61235]]}
    assert metrics[1]["val_at_schedule_ends"] == [[1, 0.55], [2, 0.58]], "epochs counted within the stage"
    replayed = Recorder()
    feed = EpochFeed(replayed)
    for stage in metrics:
        feed.replay(stage)
    assert replayed.told == fresh.told


def test_a_stage_recorded_before_schedule_ends_were_kept_replays_its_epochs_alone():
    replayed = Recorder()
    EpochFeed(replayed).replay({"val_per_epoch": [0.4, 0.5]})
    assert replayed.told == [("epoch", 1, 0.4), ("epoch", 2, 0.5)]


def test_without_a_listener_the_feed_still_records():
    metrics = {}
    stage = EpochFeed(None).for_stage(metrics)
    stage.epoch(0.3)
    stage.schedule_end(0.3)
    assert metrics == {"val_per_epoch": [0.3], "val_at_schedule_ends": [[1, 0.3]]}


def test_a_replayed_stage_that_did_not_train_tells_nothing():
    replayed = Recorder()
    EpochFeed(replayed).replay({"accuracy": 0.9})
    assert replayed.told == []
