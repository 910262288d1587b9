"""Metrics over predictions and targets (arrays or tensors)."""
from typing import Any

import numpy as np

__all__ = ["accuracy", "batch_accuracy"]


def _arr(x):
    return np.asarray(x)


def batch_accuracy(predictions: Any, targets: Any) -> float:
    """Fraction right for one output per item: sigmoid(p) > 0.5 means class 1."""
    p, t = _arr(predictions).reshape(-1), _arr(targets).reshape(-1)
    return float(np.mean((p > 0) == (t == 1)))  # sigmoid(p) > 0.5 iff p > 0


def accuracy(predictions: Any, targets: Any) -> float:
    """Fraction of rows whose largest output is the target class."""
    p, t = _arr(predictions), _arr(targets).reshape(-1)
    return float(np.mean(p.argmax(axis=1) == t))
