"""Out-of-sample scores of a model's probabilities on the holdout."""

from __future__ import annotations

import math

import numpy as np

from engine.events.decisions import CLASSES
from engine.models.card import CLASS_NAMES, ClassScores, Metrics

EPSILON = 1e-15
"""Probabilities are clipped to [EPSILON, 1] in the log loss (as scikit-learn does)."""


def majority(labels: np.ndarray) -> int:
    """The most frequent label (ties to the first of -1, 0, +1)."""
    counts = [int(np.sum(labels == c)) for c in CLASSES]
    return CLASSES[counts.index(max(counts))]


def score(probs: np.ndarray, labels: np.ndarray, baseline: int) -> Metrics:
    """Accuracy, log loss and per-class precision/recall of ``probs`` (rows of down, flat,
    up) against ``labels`` (-1, 0, +1); ``baseline`` is the constant guess to compare with."""
    truth = labels.astype(np.int64) + 1
    guess = np.argmax(probs, axis=1)
    n = len(truth)
    p_true = np.clip(probs[np.arange(n), truth], EPSILON, 1.0)
    classes = {}
    for k, name in enumerate(CLASS_NAMES):
        actual, predicted = truth == k, guess == k
        hits = int(np.sum(actual & predicted))
        classes[name] = ClassScores(
            count=int(actual.sum()),
            predicted=int(predicted.sum()),
            precision=hits / int(predicted.sum()) if predicted.any() else None,
            recall=hits / int(actual.sum()) if actual.any() else None,
        )
    return Metrics(
        rows=n,
        accuracy=float(np.mean(guess == truth)) if n else math.nan,
        log_loss=float(-np.mean(np.log(p_true))) if n else math.nan,
        baseline_class=baseline,
        baseline_accuracy=float(np.mean(labels == baseline)) if n else math.nan,
        classes=classes,
    )
