"""The labels stage's config and edge cases the samples lack: one-sided books, time going
backwards, several origins maturing on one event, clock ticks in control slices."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.app.pipelines import SHIPPED
from engine.events.book import BOOK_MID
from engine.events.control import ClockTicked, InstrumentSpec, SessionClosed
from engine.events.decisions import LABEL, new_records
from engine.events.features import FEATURES_VECTOR, new_vectors
from engine.events.market import MARKET_RECORD
from engine.runtime import ConfigError, RunConfig, Slice, StageContext
from engine.runtime.topology import resolve
from streams.labels import LabelsStage
from tests.labels_reference import reference_labels, same

BTC = InstrumentSpec("BTCUSDT", "BINANCE-USDM", "UTC", 2, 3, 10, 1, "USDT")
AAPL = InstrumentSpec("AAPL", "NASDAQ", "America/New_York", 4, 0, 100, 1, "USD")
WDO = InstrumentSpec("WDOU25", "B3", "America/Sao_Paulo", 1, 0, 5, 1, "BRL")


def stage(spec: InstrumentSpec = BTC, **config: Any) -> LabelsStage:
    resolved = resolve(SHIPPED, RunConfig(pipeline="labels", stages={"labels": config}), spec)
    return LabelsStage(StageContext("s", spec, resolved["stages"]["labels"], 0))


def test_defaults_per_venue() -> None:
    assert stage(BTC).config.horizon_ms == 2000
    assert stage(AAPL).config.horizon_ms == 1000
    assert (stage(WDO).config.horizon_ms, stage(WDO).config.threshold_bp) == (15000, 0.5)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"horizon_ms": 0}, "horizon_ms must be a positive number of milliseconds, got 0"),
        ({"threshold_bp": -1.0}, "threshold_bp must be a finite number >= 0"),
        ({"threshold_bp": float("nan")}, "threshold_bp must be a finite number >= 0"),
        ({"horizon": 5}, r"stage 'labels': unknown setting\(s\) \['horizon'\]"),
        ({"horizon_ms": "1s"}, "Expected `int`"),
    ],
)
def test_config_errors_say_what_is_allowed(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stage(BTC, **config)


# -- synthetic streams against the reference -------------------------------------------------

Event = tuple[int, int, int, float, bool]
"""(kind, ts, mids caused, mid, vector caused): kind 0 market, 1 clock tick, 2 other control."""


@st.composite
def journals(draw: st.DrawFn) -> list[Event]:
    ts, mid, out = 1_700_000_000_000_000_000, 100.0, []
    for _ in range(draw(st.integers(1, 120))):
        ts += draw(st.sampled_from([0, 1, 10**6, 3 * 10**8, 10**9, -5 * 10**8, 7 * 10**9]))
        kind = draw(st.sampled_from([0, 0, 0, 0, 1, 2]))
        mid += draw(st.sampled_from([-0.5, 0.0, 0.5, 0.01]))
        mids = draw(st.integers(0, 2)) if kind == 0 else 0
        two_sided = draw(st.integers(0, 7)) > 0
        vector = draw(st.booleans()) and kind != 2
        out.append((kind, ts, mids, mid if two_sided else 0.0, vector))
    return out


def _clock(journal: list[Event]) -> list[int]:
    """The features stage's clock after each event: a vector's ``ts_event``."""
    clock, out = 0, []
    for kind, ts, *_ in journal:
        clock = max(clock, ts) if kind < 2 else clock
        out.append(clock)
    return out


def _slices(journal: list[Event], cuts: list[int]) -> list[Slice]:
    """The journal as the runner would cut it: market runs and control runs, plus ``cuts``."""
    clock = _clock(journal)
    bounds = sorted({0, len(journal), *(c for c in cuts if 0 < c < len(journal))})
    bounds += [
        i for i in range(1, len(journal)) if (journal[i][0] == 0) != (journal[i - 1][0] == 0)
    ]
    bounds = sorted(set(bounds))
    pieces = []
    for start, stop in itertools.pairwise(bounds):
        events = journal[start:stop]
        mids, vectors = [], []
        for i, (_, ts, n_mids, mid, vector) in enumerate(events):
            mids += [(start + i, ts, mid)] * n_mids
            if vector:
                vectors.append((start + i, clock[start + i]))
        inputs = {"mid": _mids(mids), "features": _vectors(vectors)}
        if events[0][0] == 0:
            market = np.zeros(len(events), MARKET_RECORD)
            market["ts_event"] = [e[1] for e in events]
            pieces.append(Slice(start, stop, market=market, inputs=inputs))
        else:
            control = tuple(
                ClockTicked(ts_event=e[1], ts_recv=0)
                if e[0] == 1
                else SessionClosed(ts_event=e[1], ts_recv=0, session="s", reason="test")
                for e in events
            )
            pieces.append(Slice(start, stop, control=control, inputs=inputs))
    return pieces


def _mids(rows: list[tuple[int, int, float]]) -> np.ndarray[Any, Any]:
    out = new_records(BOOK_MID, len(rows))
    for i, (cause, ts, mid) in enumerate(rows):
        out[i]["cause"], out[i]["ts_event"], out[i]["mid"] = cause, ts, mid
        out[i]["two_sided"] = 1 if mid > 0 else 0
    return out


def _vectors(rows: list[tuple[int, int]]) -> np.ndarray[Any, Any]:
    out = new_vectors(len(rows), 1)
    for i, (cause, ts) in enumerate(rows):
        out[i]["cause"], out[i]["ts_event"] = cause, ts
    assert out.dtype == FEATURES_VECTOR.dtype
    return out


def _feed(labels: LabelsStage, pieces: list[Slice]) -> bytes:
    return b"".join(labels.process(p)[0].tobytes() for p in pieces)


@settings(max_examples=30)
@given(
    journal=journals(),
    cuts=st.lists(st.integers(0, 120), max_size=6),
    horizon_ms=st.sampled_from([1, 500, 2000]),
)
def test_synthetic_journals_match_the_reference_in_any_slicing(
    journal: list[Event], cuts: list[int], horizon_ms: int
) -> None:
    whole = _feed(stage(horizon_ms=horizon_ms, threshold_bp=2.0), _slices(journal, []))
    sliced = _feed(stage(horizon_ms=horizon_ms, threshold_bp=2.0), _slices(journal, cuts))
    assert whole == sliced
    got = np.frombuffer(whole, LABEL.dtype)
    times = [ts if kind < 2 else None for kind, ts, *_ in journal]
    mids = [(o, mid > 0, mid) for o, (_, _, n, mid, _) in enumerate(journal) for _ in range(n)]
    clock = _clock(journal)
    vectors = [(o, clock[o]) for o, e in enumerate(journal) if e[4]]
    expected = reference_labels(times, mids, vectors, horizon_ms, 2.0)
    assert len(got) == len(expected)
    for g, r in zip(got, expected, strict=True):
        assert (int(g["origin"]), int(g["cause"]), int(g["ts_event"]), int(g["label"])) == (
            r.origin, r.cause, r.ts_event, r.label,
        )  # fmt: skip
        assert same(float(g["move"]), r.move)
        assert same(float(g["mid_start"]), r.mid_start)
        assert same(float(g["mid_end"]), r.mid_end)


@settings(max_examples=20)
@given(journal=journals(), at=st.integers(0, 120))
def test_restore_mid_stream_continues_exactly(journal: list[Event], at: int) -> None:
    pieces = _slices(journal, [at])
    whole = _feed(stage(horizon_ms=500), pieces)
    first = stage(horizon_ms=500)
    head_pieces = [p for p in pieces if p.stop <= at]
    head = _feed(first, head_pieces)
    second = stage(horizon_ms=500)
    second.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    tail = _feed(second, pieces[len(head_pieces) :])
    assert head + tail == whole


def test_restore_refuses_another_config() -> None:
    with pytest.raises(ValueError, match="config"):
        stage(horizon_ms=500).restore(stage(horizon_ms=600).snapshot())


def test_inspect_shows_pending_origins_and_the_last_label() -> None:
    journal: list[Event] = [(0, 10**9 * (i + 1), 1, 100.0 + i, True) for i in range(5)]
    labels = stage(horizon_ms=1500)
    out = np.frombuffer(_feed(labels, _slices(journal, [])), LABEL.dtype)
    view = labels.inspect()
    assert view["labels_emitted"] == len(out) == 3  # origins 0..2 matured at events 2..4
    assert view["pending"] == 2
    assert view["oldest_pending_origin"] == 3
    assert view["last_origin"] == 2.0
    assert view["last_label"] == 1.0
    assert view["clock"] == 5 * 10**9
