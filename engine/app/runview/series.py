"""Time series for charts, and server-side downsampling.

A chart of a whole day draws a few thousand points, not a million: :func:`downsample` keeps
the points that shape the line (tsdownsample's MinMaxLTTB: the min and max of each bucket,
then Largest-Triangle-Three-Buckets over those), and returns every point when the range
asked for holds fewer than that. Times are milliseconds since the Unix epoch as floats
(what JavaScript dates and ECharts' time axis take; a double keeps sub-microsecond detail at
today's epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

NS_PER_MS = 1_000_000
DEFAULT_POINTS = 2000


@dataclass(frozen=True)
class Series:
    """One line: times (ns since the epoch, ascending) and values."""

    ts: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]

    def window(self, start_ns: int | None, end_ns: int | None) -> Series:
        """The points with ``start_ns <= ts <= end_ns`` (None: unbounded)."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts, start_ns, "left"))
        hi = len(self.ts) if end_ns is None else int(np.searchsorted(self.ts, end_ns, "right"))
        return Series(self.ts[lo:hi], self.values[lo:hi])


def series(ts: np.ndarray[Any, Any], values: np.ndarray[Any, Any]) -> Series:
    """A :class:`Series` of the finite values (NaN marks undefined points: dropped)."""
    keep = np.isfinite(values)
    return Series(
        np.ascontiguousarray(ts[keep], np.int64), np.ascontiguousarray(values[keep], np.float64)
    )


def downsample(line: Series, points: int = DEFAULT_POINTS) -> Series:
    """At most about ``points`` points that keep the line's shape (every point if fewer)."""
    if len(line.ts) <= points:
        return line
    # MinMaxLTTB needs strictly usable x; equal timestamps are fine, it keeps index order.
    chosen = MinMaxLTTBDownsampler().downsample(line.ts, line.values, n_out=max(points, 4))
    return Series(line.ts[chosen], line.values[chosen])


SIGNIFICANT = 9
"""Digits a charted value keeps (a chart needs no more; the JSON is half the size)."""


def to_ms(ts: np.ndarray[Any, Any]) -> list[float]:
    """ns since the epoch as float milliseconds (JavaScript's time unit), to the microsecond."""
    ms: list[float] = np.round(ts.astype(np.float64) / NS_PER_MS, 3).tolist()
    return ms


def pairs(line: Series) -> list[list[float]]:
    """``[[ms, value], ...]``: one chart series' data, values to :data:`SIGNIFICANT` digits."""
    values = [float(f"{v:.{SIGNIFICANT}g}") for v in line.values.tolist()]
    return [list(p) for p in zip(to_ms(line.ts), values, strict=True)]
