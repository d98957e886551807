"""A run's listener that keeps what it was told, in order (`core.epoch_feed.FeedListener`)."""


class Recorder:
    def __init__(self):
        self.told = []

    def epoch(self, step, value):
        self.told.append(("epoch", step, value))

    def schedule_end(self, step, value):
        self.told.append(("end", step, value))
