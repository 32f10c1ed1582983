"""Chart series: downsampling keeps the shape and returns everything in a small window;
the population stability index of feature drift."""

from __future__ import annotations

import numpy as np

from engine.app.runview.card import psi
from engine.app.runview.series import Series, downsample, pairs, series


def test_downsample_keeps_the_extremes_and_order() -> None:
    ts = np.arange(100_000, dtype=np.int64) * 1_000_000 + 1_700_000_000_000_000_000
    values = np.sin(np.arange(100_000) / 500.0)
    values[31_337] = 50.0  # a spike a plain stride would miss
    shown = downsample(Series(ts, values), 1000)
    assert len(shown.ts) <= 1000
    assert np.all(np.diff(shown.ts) > 0)
    assert shown.values.max() == 50.0
    assert abs(shown.values.min() - values.min()) < 1e-3  # the troughs' shape is kept


def test_a_window_with_fewer_points_comes_back_whole() -> None:
    line = Series(np.arange(10_000, dtype=np.int64), np.arange(10_000, dtype=np.float64))
    window = line.window(2_000, 2_499)
    assert len(window.ts) == 500
    assert downsample(window, 2000) is window


def test_undefined_values_are_dropped_and_pairs_are_ms() -> None:
    line = series(
        np.array([1_000_000, 2_000_000, 3_000_000]), np.array([1.0, np.nan, 0.123456789123])
    )
    assert pairs(line) == [[1.0, 1.0], [3.0, 0.123456789]]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(0.0, 1.0, 20_000)
    same = rng.normal(0.0, 1.0, 20_000)
    shifted = rng.normal(1.0, 1.0, 20_000)
    assert psi(train, same) < 0.01
    assert psi(train, shifted) > 0.25
    assert np.isnan(psi(train, np.array([np.nan])))  # nothing to compare
