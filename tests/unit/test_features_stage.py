"""The features stage's schema, docs, config, calendar, and edge cases the samples lack
(long gaps, one-sided and crossed quotes, unsigned trades, time going backwards)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.app.pipelines import SHIPPED
from engine.events.book import BOOK_TOP_DTYPE
from engine.events.control import InstrumentSpec
from engine.events.features import FEATURE_FLAGS, FEATURES_VECTOR, N_VALUES
from engine.events.market import MARKET_RECORD
from engine.runtime import ConfigError, RunConfig, Slice, StageContext, Topology
from engine.runtime.topology import resolve
from streams.features import FEATURES, NAMES, FeaturesStage
from streams.features import kernel as k
from streams.features.calendar import TradingDays
from streams.features.docs import render_markdown
from streams.features.schema import GROUP_SIZES, GROUPS
from tests.features_reference import Event, Reference

DOC = Path(__file__).parents[2] / "docs" / "features.md"
BTC = InstrumentSpec("BTCUSDT", "BINANCE-SPOT", "UTC", 2, 8, 1, 1, "USDT")
AAPL = InstrumentSpec("AAPL", "NASDAQ", "America/New_York", 4, 0, 100, 1, "USD")


def stage(spec: InstrumentSpec = BTC, **config: Any) -> FeaturesStage:
    resolved = resolve(SHIPPED, RunConfig(pipeline="features", stages={"features": config}), spec)
    return FeaturesStage(StageContext("s", spec, resolved["stages"]["features"], 0))


# -- schema and docs -------------------------------------------------------------------------


def test_schema_groups_and_kernel_layout_agree() -> None:
    assert len(FEATURES) == N_VALUES == k.N_VALUES == 65
    starts = {}
    for i, feature in enumerate(FEATURES):
        starts.setdefault(feature.group, i)
    assert [starts[g] for g in GROUPS] == [
        k.G_VOLATILITY, k.G_RETURNS, k.G_ORDER_FLOW, k.G_VOLUME, k.G_TECHNICAL, k.G_MICRO,
        k.G_TEMPORAL,
    ]  # fmt: skip
    assert [GROUP_SIZES[g] for g in GROUPS] == [10, 10, 8, 8, 8, 15, 6]
    kernel_flags = [
        k.FLAG_WARMING_UP,
        k.FLAG_NO_L1,
        k.FLAG_NO_BOOK,
        k.FLAG_NO_TRADES,
        k.FLAG_CLOSED,
    ]
    assert [bit for bit, _ in FEATURE_FLAGS] == kernel_flags
    assert FEATURES_VECTOR.dtype is not None
    assert FEATURES_VECTOR.dtype.itemsize == 24 + 8 * 65


def test_every_feature_is_fully_documented() -> None:
    for f in FEATURES:
        for field in (f.formula, f.window, f.units, f.warmup, f.no_order_ids, f.no_trades):
            assert field, f.name
        assert f"`{f.name}`" in DOC.read_text()


def test_features_doc_is_current() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/features.md is stale: run `.venv/bin/python -m streams.features.docs > "
        "docs/features.md`"
    )


# -- config ------------------------------------------------------------------------------------


def test_defaults_per_venue() -> None:
    assert stage(BTC).config.l1 == "quote"
    assert stage(BTC).config.calendar == "24/7"
    assert stage(AAPL).config.calendar == "XNAS"
    assert stage(AAPL).config.l1 == "book"
    assert stage(AAPL).config.cadence == "book"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cadence": "tick"}, r"unknown cadence 'tick'; choose one of 'trade', 'book', 'time'"),
        ({"cadence": "time", "interval_ms": 0}, "interval_ms must be > 0"),
        ({"l1": "depth"}, "l1 must be one of 'quote', 'book'"),
        ({"calendar": "NOPE"}, "unknown trading calendar 'NOPE'"),
        ({"every": 5}, r"unknown setting\(s\) \['every'\]"),
        ({"interval_ms": "fast"}, "Expected `int`"),
    ],
)
def test_config_errors_say_what_is_allowed(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stage(BTC, **config)


def test_a_venue_without_a_known_calendar_must_name_one() -> None:
    spec = InstrumentSpec("X", "LSE", "Europe/London", 2, 0, 1, 1, "GBP")
    with pytest.raises(ConfigError, match="no trading calendar is known for venue 'LSE'"):
        stage(spec)
    assert stage(spec, calendar="XLON").config.calendar == "XLON"


def test_unknown_cadence_through_a_run_config_fails_when_the_pipeline_is_built() -> None:
    config = RunConfig(pipeline="features", stages={"features": {"cadence": "hourly"}})
    resolved = resolve(SHIPPED, config, BTC)
    with pytest.raises(ConfigError, match="unknown cadence 'hourly'"):
        Topology(SHIPPED.get("features"), resolved, "s", BTC)


def test_the_mid_pipeline_is_unchanged() -> None:
    assert [s.id for s in SHIPPED.get("mid").stages] == ["book", "mid"]
    assert [s.id for s in SHIPPED.get("features").stages] == ["book", "mid", "features"]


# -- calendar and temporal features -------------------------------------------------------------


def _utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 10**9


def _temporal(days: TradingDays, t: int) -> dict[str, float]:
    out = np.full(k.N_VALUES, np.nan)
    k._temporal(t, days.day_of(t), out)
    return dict(zip(NAMES[k.G_TEMPORAL :], out[k.G_TEMPORAL :].tolist(), strict=True))


def test_nasdaq_session_hours_holidays_and_early_closes() -> None:
    days = TradingDays("America/New_York", "XNAS")
    t = _utc(2012, 6, 21, 13, 30, 49)  # 09:30:49 EDT, a Thursday
    v = _temporal(days, t)
    assert v["seconds_since_open"] == 49.0
    assert v["minutes_to_close"] == (6 * 3600 + 30 * 60 - 49) / 60
    assert v["day_of_week"] == 3.0
    assert v["is_trading_hours"] == 1.0
    assert v["time_of_day_sin"] == math.sin(2.0 * math.pi * (9 * 3600 + 30 * 60 + 49) / 86400)
    early = _temporal(days, _utc(2012, 11, 23, 18, 30))  # the day after Thanksgiving: 13:00
    assert early["minutes_to_close"] == -30.0
    assert early["is_trading_hours"] == 0.0
    holiday = _temporal(days, _utc(2012, 7, 4, 15))
    assert math.isnan(holiday["seconds_since_open"])
    assert holiday["is_trading_hours"] == 0.0
    weekend = _temporal(days, _utc(2012, 6, 23, 15))
    assert weekend["day_of_week"] == 5.0
    assert weekend["is_trading_hours"] == 0.0


def test_local_time_follows_daylight_saving_changes() -> None:
    days = TradingDays("America/New_York", "XNAS")
    row = days.day_of(_utc(2012, 3, 11, 12))  # clocks spring forward at 02:00 EST
    assert row[k.D_END] - row[k.D_START] == 23 * 3600 * 10**9
    assert row[k.D_TRANS] == _utc(2012, 3, 11, 7)
    after = _temporal(days, _utc(2012, 3, 11, 7, 30))  # 03:30 EDT
    assert after["time_of_day_cos"] == math.cos(2.0 * math.pi * (3.5 * 3600) / 86400)
    before = _temporal(days, _utc(2012, 3, 11, 6, 30))  # 01:30 EST
    assert before["time_of_day_cos"] == math.cos(2.0 * math.pi * (1.5 * 3600) / 86400)
    assert days.local_date(_utc(2012, 3, 11, 4, 59)) == dt.date(2012, 3, 10)  # 23:59 EST


def test_b3_and_crypto_days() -> None:
    b3 = _temporal(TradingDays("America/Sao_Paulo", "BVMF"), _utc(2025, 8, 11, 13, 56, 19))
    assert b3["seconds_since_open"] == 3379.0  # BVMF opens 10:00 BRT (UTC-3)
    assert b3["day_of_week"] == 0.0
    assert b3["is_trading_hours"] == 1.0
    crypto = TradingDays("UTC", "24/7")
    sunday = _temporal(crypto, _utc(2024, 8, 11, 23, 59, 59))
    assert sunday["is_trading_hours"] == 1.0
    assert sunday["seconds_since_open"] == 86399.0
    assert sunday["minutes_to_close"] == 1 / 60


def test_unknown_time_zones_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        TradingDays("Mars/Olympus", "24/7")


# -- synthetic edge cases against the reference ----------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[int, int, int, int, int, int, int]]:
    """(kind, side, price, size, price2, size2, ts) records: quotes, trades and other
    records, with jumps, long gaps and time going backwards."""
    ts, mid, out = 1_723_161_254_000_000_000, 6_000_000, []
    for _ in range(draw(st.integers(1, 160))):
        ts += draw(st.sampled_from([0, 1, 10**6, 3 * 10**8, 15 * 10**8, -5 * 10**8, 70 * 10**9,
                                    700 * 10**9]))  # fmt: skip
        kind = draw(st.sampled_from([7, 7, 7, 1, 1, 6]))
        if kind == 7:
            mid += draw(st.integers(-3, 3))
            spread = draw(st.sampled_from([1, 1, 2, 3, 0, -1]))  # 0, -1: locked, crossed
            bid = mid if draw(st.integers(0, 9)) else 0  # sometimes one-sided
            out.append((7, 0, bid, draw(st.integers(0, 5)) * 10**6, mid + spread,
                        draw(st.integers(0, 5)) * 10**6, ts))  # fmt: skip
        elif kind == 1:
            price = mid + draw(st.integers(-2, 3))
            out.append((1, draw(st.sampled_from([-1, 0, 1])), price,
                        draw(st.integers(1, 9)) * 10**5, 0, 0, ts))  # fmt: skip
        else:
            out.append((6, 1, mid, 1, 0, 0, ts))
    return out


def _records(stream: list[tuple[int, ...]]) -> np.ndarray[Any, Any]:
    records = np.zeros(len(stream), MARKET_RECORD)
    for name, column in zip(
        ("type_id", "side", "price", "size", "price2", "size2", "ts_event"),
        zip(*stream, strict=True),
        strict=True,
    ):
        records[name] = column
    return records


def _feed(features: FeaturesStage, records: np.ndarray[Any, Any], cuts: list[int]) -> np.ndarray:
    tops = np.zeros(0, BOOK_TOP_DTYPE)
    outs, start = [], 0
    for stop in [*sorted({c for c in cuts if c < len(records)}), len(records)]:
        if stop > start:
            piece = Slice(start, stop, market=records[start:stop], inputs={"book": tops})
            outs.append(features.process(piece)[0])
            start = stop
    # (np.concatenate would repack the structured dtype, dropping its header padding)
    joined = np.zeros(sum(len(o) for o in outs), FEATURES_VECTOR.dtype)
    at = 0
    for out in outs:
        assert out.dtype == FEATURES_VECTOR.dtype
        joined[at : at + len(out)] = out
        at += len(out)
    return joined


@settings(max_examples=40)
@given(
    stream=streams(),
    cadence=st.sampled_from([("trade", 1000), ("time", 1), ("time", 250), ("time", 1000)]),
    cuts=st.lists(st.integers(0, 160), max_size=5),
)
def test_synthetic_streams_match_the_reference_in_any_slicing(
    stream: list[tuple[int, ...]], cadence: tuple[str, int], cuts: list[int]
) -> None:
    name, interval = cadence
    records = _records(stream)
    whole = _feed(stage(BTC, cadence=name, interval_ms=interval), records, [])
    sliced = _feed(stage(BTC, cadence=name, interval_ms=interval), records, cuts)
    assert whole.tobytes() == sliced.tobytes()
    events = [Event(i, *(int(x) for x in r[:6]), int(r[6])) for i, r in enumerate(stream)]
    expected = list(Reference(BTC, name, interval, "quote", "24/7").run(events))
    assert len(whole) == len(expected)
    for vector, ref in zip(whole, expected, strict=True):
        assert (int(vector["cause"]), int(vector["ts_event"]), int(vector["flags"])) == (
            ref.cause, ref.ts, ref.flags,
        )  # fmt: skip
        for i, feature in enumerate(NAMES):
            a, b = float(vector["values"][i]), ref.values[feature]
            assert a == b or (math.isnan(a) and math.isnan(b)), (feature, a, b)


@settings(max_examples=20)
@given(stream=streams(), at=st.integers(0, 160))
def test_restore_mid_stream_continues_exactly(stream: list[tuple[int, ...]], at: int) -> None:
    records = _records(stream)
    at = min(at, len(records))
    whole = _feed(stage(BTC, cadence="time", interval_ms=100), records, [])
    first = stage(BTC, cadence="time", interval_ms=100)
    head = _feed(first, records[:at], [])
    second = stage(BTC, cadence="time", interval_ms=100)
    second.restore(first.snapshot())
    tail = second.process(
        Slice(at, len(records), market=records[at:], inputs={"book": np.zeros(0, BOOK_TOP_DTYPE)})
    )[0]
    assert head.tobytes() + tail.tobytes() == whole.tobytes()


def test_more_vectors_than_the_output_buffer_in_one_slice() -> None:
    """2,500 vectors from one slice come back in the exact event dtype, as one event at a
    time would give them."""
    ts = 1_723_161_254_000_000_000
    stream = [
        (7, 0, 6_000_000 + i % 7, 10**6, 6_000_010, 10**6, ts + i * 10**6) for i in range(2500)
    ]
    records = _records(stream)
    whole = _feed(stage(BTC, cadence="time", interval_ms=1), records, [])
    assert whole.dtype == FEATURES_VECTOR.dtype
    assert len(whole) == 2500
    one_by_one = _feed(stage(BTC, cadence="time", interval_ms=1), records, list(range(2500)))
    assert whole.tobytes() == one_by_one.tobytes()
