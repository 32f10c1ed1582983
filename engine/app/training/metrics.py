"""Out-of-sample scores of a model's probabilities on the holdout, beside two baselines: the
training majority class (for accuracy) and the training class frequencies (for log loss)."""

from __future__ import annotations

import math

import msgspec
import numpy as np

from engine.events.decisions import CLASSES
from engine.models.card import CLASS_NAMES, ClassScores, Metrics

EPSILON = 1e-15
"""Probabilities are clipped to [EPSILON, 1] in the log loss (as scikit-learn does)."""


def majority(labels: np.ndarray) -> int:
    """The most frequent label (ties to the first of -1, 0, +1)."""
    counts = [int(np.sum(labels == c)) for c in CLASSES]
    return CLASSES[counts.index(max(counts))]


def frequencies(labels: np.ndarray) -> np.ndarray:
    """The share of each class (down, flat, up) in ``labels``."""
    return np.array([np.mean(labels == c) for c in CLASSES], np.float64)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative natural log of the probability given to the true class (clipped)."""
    truth = labels.astype(np.int64) + 1
    if not len(truth):
        return math.nan
    p_true = np.clip(probs[np.arange(len(truth)), truth], EPSILON, 1.0)
    return float(-np.mean(np.log(p_true)))


def score(probs: np.ndarray, labels: np.ndarray, training: np.ndarray) -> Metrics:
    """Accuracy, log loss and per-class precision/recall of ``probs`` (rows of down, flat,
    up) against ``labels`` (-1, 0, +1), with the baselines taken from the ``training`` labels."""
    truth = labels.astype(np.int64) + 1
    guess = np.argmax(probs, axis=1)
    n = len(truth)
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
    baseline = majority(training)
    prior = np.tile(frequencies(training), (n, 1))
    return Metrics(
        rows=n,
        accuracy=float(np.mean(guess == truth)) if n else math.nan,
        log_loss=log_loss(probs, labels),
        baseline_class=baseline,
        baseline_accuracy=float(np.mean(labels == baseline)) if n else math.nan,
        classes=classes,
        baseline_log_loss=log_loss(prior, labels),
    )


def pooled(
    probs: list[np.ndarray], labels: list[np.ndarray], training: list[np.ndarray]
) -> Metrics:
    """The scores of several folds' test rows taken together; each fold's baselines come from
    its own training labels (``baseline_class`` is the most common of the folds' majorities)."""
    together = score(np.concatenate(probs), np.concatenate(labels), np.concatenate(training))
    guesses = [majority(t) for t in training]
    hits = sum(int(np.sum(y == g)) for y, g in zip(labels, guesses, strict=True))
    priors = [np.tile(frequencies(t), (len(y), 1)) for y, t in zip(labels, training, strict=True)]
    n = together.rows
    return msgspec.structs.replace(
        together,
        baseline_class=max(set(guesses), key=guesses.count),
        baseline_accuracy=hits / n if n else math.nan,
        baseline_log_loss=log_loss(np.concatenate(priors), np.concatenate(labels)),
    )
