"""User metrics for test_metrics.py."""

import numpy as np


def recall_floor(logits, labels):
    """The worst class's recall: a model must be good on every class, not on average."""
    predicted = logits.argmax(1)
    return float(min((predicted[labels == c] == c).mean() for c in np.unique(labels)))


def out_of_range(logits, labels):
    return 3.0


def not_a_number(logits, labels):
    return "good"


def noisy_top1(logits, labels):
    """Top-1, logging through a library's logger and warning as libraries do (for test_run_log.py)."""
    import logging
    import warnings

    logging.getLogger("torch.some_module").warning("LIBRARY-NOISE: a deprecation the user cannot act on")
    warnings.warn("PYTHON-WARNING: something is deprecated", DeprecationWarning, stacklevel=1)
    return float((logits.argmax(1) == labels).mean())
