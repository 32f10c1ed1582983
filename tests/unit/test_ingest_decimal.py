"""Exact decimal parsing: no floats, refuse what the scale cannot hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.app.ingest.decimal import DecimalError, ScaledCache, format_scaled, parse_scaled


@pytest.mark.parametrize(
    ("text", "scale", "value"),
    [
        ("61837.63000000", 2, 6183763),
        ("0.00000000", 8, 0),
        ("0.1", 1, 1),
        ("5471.5", 1, 54715),
        ("34200.004241176", 9, 34200004241176),
        ("-1", 0, -1),
        (".5", 1, 5),
        ("12", 3, 12000),
    ],
)
def test_parses_exactly(text: str, scale: int, value: int) -> None:
    assert parse_scaled(text, scale) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("61837.631", "precision"),
        ("1e5", "not_numeric"),
        ("1_000", "not_numeric"),
        (" 1", "not_numeric"),
        ("nan", "not_numeric"),
        ("", "not_numeric"),
        ("1.", "not_numeric"),
        ("²", "not_numeric"),
        ("--1", "not_numeric"),
    ],
)
def test_refuses(text: str, reason: str) -> None:
    with pytest.raises(DecimalError) as err:
        parse_scaled(text, 2)
    assert err.value.reason == reason


@given(st.integers(-(10**17), 10**17), st.integers(0, 9))
def test_round_trip(value: int, scale: int) -> None:
    assert parse_scaled(format_scaled(value, scale), scale) == value


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=8, allow_nan=False), st.integers(8, 12)
)
def test_matches_decimal_arithmetic(d: object, scale: int) -> None:
    from decimal import Decimal

    assert isinstance(d, Decimal)
    text = format(d, "f")
    assert parse_scaled(text, scale) == int(d.scaleb(scale))


def test_cache_stays_bounded() -> None:
    cache = ScaledCache(2, limit=4)
    for i in range(10):
        assert cache(f"{i}.5") == i * 100 + 50
    assert len(cache._cache) <= 4
