"""Where a training schedule ends, the figure told is the model's the schedule leaves behind."""

from pipeline.training.loop import TrainConfig
from pipeline.training.session import schedule_end_figure

HISTORY = [{"val_accuracy": 0.5}, {"val_accuracy": 0.7}, {"val_accuracy": 0.6}]


def test_a_schedule_ends_with_its_last_epochs_figure():
    assert schedule_end_figure(HISTORY, TrainConfig(epochs=3)) == 0.6


def test_under_early_stopping_it_ends_with_the_best_epochs_figure_whose_weights_are_restored():
    assert schedule_end_figure(HISTORY, TrainConfig(epochs=3, early_stopping_patience=1)) == 0.7
