"""The classifier is found by one rule: the last layer with one output per class to run in a forward pass."""

import torch
from torch import nn

from pipeline.models.classifier import classifier_name
from pipeline.models.zoo import tiny_cnn
from pipeline.pruning.pruner import ignored_layers


class ConvHead(nn.Module):
    """A 10-channel conv early on, and a 1x1-conv classifier with global pooling (no nn.Linear)."""

    def __init__(self):
        super().__init__()
        self.early = nn.Conv2d(1, 10, 3, padding=1)
        self.mid = nn.Conv2d(10, 16, 3, padding=1)
        self.head = nn.Conv2d(16, 10, 1)
        self.unused = nn.Linear(4, 10)  # built, never called: not the classifier

    def forward(self, x):
        return self.head(torch.relu(self.mid(torch.relu(self.early(x))))).mean((2, 3))


def test_the_classifier_is_the_last_layer_with_class_outputs_to_run():
    model = tiny_cnn(widths=(10, 16, 32, 32))  # its first conv has as many channels as there are classes
    assert classifier_name(model, (1, 28, 28), 10) == "fc"
    assert classifier_name(ConvHead(), (1, 28, 28), 10) == "head"
    assert classifier_name(tiny_cnn(), (1, 28, 28), 7) is None
    model.train()
    classifier_name(model, (1, 28, 28), 10)
    assert model.training, "the model is left in the mode it was in"


def test_pruning_spares_the_classifier_and_the_named_layers_only():
    model = ConvHead()
    spared = ignored_layers(model, (1, 28, 28), ["mid"], 10)
    assert spared == [model.head, model.mid], "the early 10-channel conv is pruned like any other"
