"""Splitting labelled rows by time without leaking the future into training.

The rows (labels matured by ``--until``, undefined ones dropped) are in origin order. Scoring
from a row ``c`` (journal offset ``c_o``, time ``t_c``), a row may be trained on only if both:

* purging: its label matured at a journal offset before ``c_o`` (its outcome was known before
  scoring began); a row of an earlier session always was, and
* embargo: it matured at least one horizon before ``t_c`` (``maturity_ts <= t_c - horizon``),
  so there is a quiet gap of one horizon between the last outcome trained on and the first
  vector scored; since a label matures after ``origin_ts + horizon``, the last training vector
  is more than two horizons before it.

:func:`holdout_split` applies the rule to the last ``holdout`` share; the same rule cuts the
training rows into consecutive folds for the meta-learner's out-of-fold predictions
(:func:`forward_folds`) and places every walk-forward boundary (:func:`walk_forward`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.models import SessionSource


@dataclass(frozen=True)
class Split:
    """Row positions (into the rows given) of the training and holdout sets."""

    train: np.ndarray
    holdout: np.ndarray
    embargo_ns: int


def before(rows: pl.DataFrame, start: int, horizon_ns: int) -> np.ndarray:
    """Positions of rows that may be trained on when scoring from row ``start`` onwards."""
    first_offset = int(rows["origin"][start])
    first_ts = int(rows["origin_ts"][start])
    purged = rows["maturity"] < first_offset
    if "part" in rows.columns:  # rows of several sessions: offsets compare within one only
        purged = purged | (rows["part"] < int(rows["part"][start]))
    ok = purged & (rows["maturity_ts"] <= first_ts - horizon_ns)
    positions = np.flatnonzero(ok.to_numpy())
    return positions[positions < start]


def holdout_split(rows: pl.DataFrame, holdout: float, horizon_ns: int) -> Split:
    """The last ``holdout`` share of ``rows`` as holdout, the purged, embargoed rest as train."""
    start = len(rows) - max(1, round(holdout * len(rows)))
    return Split(before(rows, start, horizon_ns), np.arange(start, len(rows)), horizon_ns)


def forward_folds(
    rows: pl.DataFrame, train: np.ndarray, folds: int, horizon_ns: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, predict rows) for each of ``folds - 1`` forward steps over ``train``.

    ``train`` is cut into ``folds`` consecutive blocks; block ``k`` (k >= 1) is predicted by
    models fitted on the earlier training rows that the purge and embargo rule allows.
    """
    blocks = np.array_split(train, folds)
    out = []
    for block in blocks[1:]:
        if len(block) == 0:
            continue
        fit = before(rows, int(block[0]), horizon_ns)
        out.append((fit[np.isin(fit, train)], block))
    return out


def trading_time(rows: pl.DataFrame, sources: list[SessionSource]) -> np.ndarray:
    """Each row's vector time on a clock that runs only inside sessions: ns since the first
    session began, with the gaps between sessions (nights, weekends) left out."""
    starts = np.array([s.first_ts for s in sources], np.int64)
    spans = np.array([s.last_ts - s.first_ts for s in sources], np.int64)
    before_part = np.concatenate([[0], np.cumsum(spans)[:-1]])
    part = rows["part"].to_numpy() if "part" in rows.columns else np.zeros(len(rows), np.int64)
    clock: np.ndarray = rows["origin_ts"].to_numpy() - starts[part] + before_part[part]
    return clock


@dataclass(frozen=True)
class Windows:
    """How walk-forward windows are cut: ``folds`` equal test windows after a first block of
    the same length, or test windows of ``test_ns`` after ``train_ns`` of trading time."""

    rolling: bool
    folds: int = 0
    train_ns: int = 0
    test_ns: int = 0


def test_windows(first: int, last: int, windows: Windows) -> list[tuple[int, int]]:
    """``[start, stop)`` of each test window on the trading-time clock, for rows from
    ``first`` to ``last`` on it; the last window runs to the end of the rows."""
    if windows.folds:
        block = (last - first) // (windows.folds + 1)
        bounds = [first + block * (k + 1) for k in range(windows.folds)]
    else:
        bounds = list(range(first + windows.train_ns, last + 1, windows.test_ns))
    return [(a, b) for a, b in zip(bounds, [*bounds[1:], last + 1], strict=True)]


def walk_forward(
    rows: pl.DataFrame, sources: list[SessionSource], windows: Windows, horizon_ns: int
) -> list[Split]:
    """One :class:`Split` per fold: the fold's test rows and the rows it may be fitted on.

    Test windows are consecutive on the trading-time clock (:func:`trading_time`), from the
    first labelled row to the last. A fold trains on every earlier row the purge and embargo
    rule allows (expanding) or only those whose vector lies in the training window just before
    the test (rolling: ``train_ns``, or one block with ``folds``); windows with no test rows
    are left out.
    """
    clock = trading_time(rows, sources)
    first, last = int(clock.min()), int(clock.max())
    span = (last - first) // (windows.folds + 1) if windows.folds else windows.train_ns
    out = []
    for start, stop in test_windows(first, last, windows):
        test = np.flatnonzero((clock >= start) & (clock < stop))
        if not len(test):
            continue
        fit = before(rows, int(test[0]), horizon_ns)
        if windows.rolling:
            fit = fit[clock[fit] >= start - span]
        out.append(Split(fit, test, horizon_ns))
    return out
