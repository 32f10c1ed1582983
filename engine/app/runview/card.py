"""The model card of a run, placed in time: in-sample and out-of-sample periods, feature drift.

A run that trades with a bundle is only out-of-sample where the bundle never learnt. When the
run is of the session the bundle was trained on, :func:`periods` gives the span whose labels
it learnt from (in-sample) and the holdout it was scored on; results inside the first are
in-sample and must be labelled so. :func:`feature_drift` compares each model input's
distribution in the training rows with the run's, by the population stability index
(PSI = sum over bins of (run share - train share) * ln(run share / train share), ten
quantile bins of the training rows): below 0.1 is usually read as stable, above 0.25 as a
large shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.app.runview.data import RunData, read_fixed
from engine.models import ModelCard
from engine.runtime.manifest import output_topic
from streams.features.schema import NAMES as FEATURE_NAMES

PSI_BINS = 10
PSI_FLOOR = 1e-4
"""Share given to an empty bin, so the logarithm stays finite."""


@dataclass(frozen=True)
class Period:
    """A span of event time with what it means for the run's results."""

    label: str
    start_ns: int
    end_ns: int


def periods(card: ModelCard, run: RunData) -> list[Period]:
    """In-sample and holdout periods of ``card`` inside ``run`` (none: another session)."""
    data = card.data
    if data.session != run.manifest.session:
        return []
    horizon_ns = int(data.labels.get("horizon_ms", 0)) * 1_000_000
    return [
        Period("in-sample: training rows and their label horizon", data.train.first_ts,
               data.train.last_ts + horizon_ns),
        Period("out-of-sample: the card's holdout", data.holdout.first_ts, data.holdout.last_ts),
    ]  # fmt: skip


@dataclass(frozen=True)
class Drift:
    """One feature's shift between the training rows and the run."""

    feature: str
    psi: float
    train_mean: float
    run_mean: float


def model_inputs(card: ModelCard) -> list[str]:
    """Features the bundle's models read, in catalogue order."""
    used = {c for member in card.models.values() for c in member.columns}
    return [name for name in FEATURE_NAMES if name in used]


def training_vectors(card: ModelCard, run: RunData) -> np.ndarray[Any, Any] | None:
    """The feature vectors of the card's training rows (None: their run is not in the log)."""
    data = card.data
    vectors = read_fixed(run.log, output_topic(data.run_id, "features"))
    if vectors is None and data.session == run.manifest.session:
        vectors = run.fixed("features")  # same session and journal: the same vectors
    if vectors is None:
        return None
    keep = (vectors["cause"] >= data.train.first_origin) & (
        vectors["cause"] <= data.train.last_origin
    )
    return vectors[keep]


def psi(train: np.ndarray[Any, Any], other: np.ndarray[Any, Any]) -> float:
    """Population stability index of ``other`` against ``train`` (finite values only)."""
    train, other = train[np.isfinite(train)], other[np.isfinite(other)]
    if len(train) == 0 or len(other) == 0:
        return float("nan")
    edges = np.unique(np.quantile(train, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    a = np.bincount(np.searchsorted(edges, train, "right"), minlength=len(edges) + 1)
    b = np.bincount(np.searchsorted(edges, other, "right"), minlength=len(edges) + 1)
    pa = np.maximum(a / len(train), PSI_FLOOR)
    pb = np.maximum(b / len(other), PSI_FLOOR)
    return float(np.sum((pb - pa) * np.log(pb / pa)))


def feature_drift(card: ModelCard, run: RunData) -> list[Drift]:
    """PSI of every model input, largest first (empty: no training rows or run vectors)."""
    train = training_vectors(card, run)
    mine = run.fixed("features")
    if train is None or mine is None or len(train) == 0 or len(mine) == 0:
        return []
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    out = []
    for name in model_inputs(card):
        a, b = train["values"][:, index[name]], mine["values"][:, index[name]]
        out.append(Drift(name, psi(a, b), float(np.nanmean(a)), float(np.nanmean(b))))
    return sorted(out, key=lambda d: -d.psi if np.isfinite(d.psi) else 0.0)
