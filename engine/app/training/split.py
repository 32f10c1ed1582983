"""Splitting labelled rows by time without leaking the future into training.

The rows (labels matured by ``--until``, undefined ones dropped) are in origin order. The last
``holdout`` share of them is the holdout; it starts at the first holdout vector (journal offset
``c_h``, time ``t_h``). A training row must satisfy both:

* purging: its label matured at a journal offset before ``c_h`` (its outcome was known before
  the holdout began), and
* embargo: it matured at least one horizon before ``t_h`` (``maturity_ts <= t_h - horizon``),
  so there is a quiet gap of one horizon between the last outcome trained on and the first
  vector scored; since a label matures after ``origin_ts + horizon``, the last training vector
  is more than two horizons before the holdout.

The same rule cuts the training rows into consecutive folds for the meta-learner's
out-of-fold predictions (:func:`forward_folds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


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
    ok = (rows["maturity"] < first_offset) & (rows["maturity_ts"] <= first_ts - horizon_ns)
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
