"""The ``features`` processor: 65 features from trades, quotes and the book, in event time.

Inputs
    The journal's market records: trades (``market.trade``, ``market.order_executed``) and
    quotes (``market.quote``); every record also moves the event-time clock. ``clock.ticked``
    control events move the clock too (so a time cadence fires in quiet periods). Port ``book``
    (``book.top``) of the same slice: each top is applied right after the journal record that
    caused it (its ``offset``).
Outputs
    Port ``features``: ``features.vector`` records (:mod:`engine.events.features`), at most one
    per journal record, emitted at the configured cadence after that record (and its top) was
    applied; ``cause`` is the record's offset, ``ts_event`` the clock.
State
    The clock, the L1, one-second bars of the last 64 s, recursive decays and EMAs, the last
    top, the venue's current local day, the last vector (see :mod:`streams.features.kernel`).
    :meth:`snapshot` / :meth:`restore` serialise all of it exactly (msgpack float64).
Guarantees
    Deterministic and batch-independent: one compiled loop applies events in journal order and
    carries its state between calls, so slices of one event and of a million give identical
    bytes. Time comes only from events (the clock is the largest ``ts_event`` seen, so feeds
    that mix exchange and receive timestamps never move it backwards); calendars are looked up
    by event date. Pure: no I/O besides reading the pinned time-zone and calendar data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_TOP_DTYPE
from engine.events.control import InstrumentSpec
from engine.events.features import FEATURE_FLAGS, FEATURES_VECTOR, new_vectors
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import ConfigError, Stage, typed_config
from streams.columns import JournalColumns, journal_columns
from streams.features import kernel as k
from streams.features.calendar import TradingDays, default_calendar
from streams.features.schema import FEATURE_SCHEMA_VERSION, NAMES

FEATURES_PORT = Port("features", FEATURES_VECTOR)
STATE_VERSION = 1
CADENCES = {"trade": k.CADENCE_TRADE, "book": k.CADENCE_BOOK, "time": k.CADENCE_TIME}
L1_SOURCES = ("quote", "book")
_OUT_ROWS = 1024
"""Vectors per kernel call before the output buffer is handed back (bounds memory)."""


@dataclass(frozen=True)
class FeaturesConfig:
    """Settings of the ``features`` processor."""

    cadence: str = "book"
    """When to emit: ``trade`` (after every trade), ``book`` (after every ``book.top``) or
    ``time`` (on the first event at or after each ``interval_ms`` boundary of event time)."""
    interval_ms: int = 1000
    """The ``time`` cadence's interval; boundaries are multiples of it since the epoch."""
    l1: str = "book"
    """Where best bid/ask come from: ``book`` (level 1 of ``book.top``) or ``quote``
    (``market.quote`` records, e.g. Binance's real-time bookTicker)."""
    calendar: str = ""
    """Trading calendar: an exchange_calendars code (``XNAS``, ``BVMF``...) or ``24/7``."""


def features_config(spec: InstrumentSpec) -> FeaturesConfig:
    """The defaults for an instrument: its venue's calendar and L1 source."""
    l1 = "quote" if spec.venue.startswith("BINANCE") else "book"
    return FeaturesConfig(l1=l1, calendar=default_calendar(spec.venue))


def _validated(config: FeaturesConfig, venue: str) -> FeaturesConfig:
    if config.cadence not in CADENCES:
        raise ConfigError(
            f"stage 'features': unknown cadence {config.cadence!r}; choose one of "
            f"{', '.join(repr(c) for c in CADENCES)} (with 'time', set interval_ms)"
        )
    if config.interval_ms <= 0:
        raise ConfigError(f"stage 'features': interval_ms must be > 0, got {config.interval_ms}")
    if config.l1 not in L1_SOURCES:
        raise ConfigError(
            f"stage 'features': l1 must be one of {', '.join(map(repr, L1_SOURCES))}, got "
            f"{config.l1!r}"
        )
    if not config.calendar:
        raise ConfigError(
            f"stage 'features': no trading calendar is known for venue {venue!r}; set "
            "calendar to an exchange_calendars code (e.g. XNYS) or '24/7'"
        )
    return config


class _State(msgspec.Struct, array_like=True):
    version: int
    schema: int
    config: tuple[str, int, str, str, str, int, int]
    si: list[int]
    sf: list[float]
    bars_i: list[list[int]]
    bars_f: list[list[float]]
    book: list[list[int]]
    day: list[int]
    last_meta: list[int]
    last_values: list[float]


class FeaturesStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        spec = context.instrument
        self.config = _validated(
            typed_config(FeaturesConfig, "features", context.config), spec.venue
        )
        try:
            self.days = TradingDays(spec.time_zone, self.config.calendar)
        except ValueError as exc:
            raise ConfigError(f"stage 'features': {exc}") from None
        c = self.config
        self.identity = (
            c.cadence,
            c.interval_ms,
            c.l1,
            c.calendar,
            spec.time_zone,
            spec.tick_size,
            spec.size_scale,
        )
        self.cfg = np.zeros(k.N_C, np.int64)
        self.cfg[k.C_CADENCE] = CADENCES[c.cadence]
        self.cfg[k.C_INTERVAL] = c.interval_ms * 1_000_000
        self.cfg[k.C_L1_QUOTE] = 1 if c.l1 == "quote" else 0
        if spec.tick_size <= 0:
            raise ConfigError(f"stage 'features': instrument tick_size must be > 0: {spec}")
        self.cfg[k.C_TICK] = spec.tick_size
        self.div = float(10**spec.size_scale)
        self.si, self.sf, self.bars_i, self.bars_f, self.book, self.day = k.new_state()
        self.last_meta = np.zeros(3, np.int64)
        self.last_values = np.full(k.N_VALUES, np.nan)
        self.emitted = 0
        self._vals = np.empty((_OUT_ROWS, k.N_VALUES), np.float64)  # reused output buffers
        self._meta = np.empty((_OUT_ROWS, 3), np.int64)

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """The vectors the slice's events trigger at the configured cadence."""
        tops = piece.inputs.get("book")
        records = journal_columns(piece)
        if not isinstance(tops, np.ndarray) or len(tops) == 0:
            tops = np.zeros(0, BOOK_TOP_DTYPE)
        return (self._run(records, tops),)

    def _run(self, r: JournalColumns, tops: np.ndarray[Any, Any]) -> Output:
        top_offset = np.ascontiguousarray(tops["offset"]).view(np.int64)
        top_status = np.ascontiguousarray(tops["status"]).astype(np.int64)
        levels = np.stack([tops[f] for f in ("bid_price", "bid_size", "ask_price", "ask_size")])
        vals, meta = self._vals, self._meta
        parts: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        i = j = 0
        while True:
            n, i, j, status = k.run(
                r.offsets,
                r.type_id,
                r.side,
                r.price,
                r.size,
                r.price2,
                r.size2,
                r.ts_event,
                top_offset,
                top_status,
                levels,
                i,
                j,
                self.si,
                self.sf,
                self.bars_i,
                self.bars_f,
                self.book,
                self.day,
                self.cfg,
                self.div,
                vals,
                meta,
                0,
            )
            if n:
                parts.append((vals[:n].copy(), meta[:n].copy()))
            if status == k.NEED_DAY:
                self.day[:] = self.days.day_of(int(self.si[k.I_NEED]))
            elif status == k.DONE:
                break
        if not parts:
            return FEATURES_PORT.empty()
        # Joined as plain arrays: concatenating structured arrays would drop the header's
        # zero padding from the dtype, and the runner insists on the exact event dtype.
        return self._vectors(
            np.concatenate([v for v, _ in parts]), np.concatenate([m for _, m in parts])
        )

    def _vectors(
        self, vals: np.ndarray[Any, Any], meta: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        out = new_vectors(len(vals), FEATURE_SCHEMA_VERSION)
        vals = np.where(np.isnan(vals), np.nan, vals)  # one canonical NaN, whatever made it
        out["ts_event"], out["cause"], out["flags"] = meta[:, 0], meta[:, 1], meta[:, 2]
        out["values"] = vals
        self.last_meta[:] = meta[-1]
        self.last_values[:] = vals[-1]
        self.emitted += len(vals)
        return out

    def snapshot(self) -> bytes:
        """Every state array and the last vector (floats as exact msgpack float64)."""
        state = _State(
            STATE_VERSION,
            FEATURE_SCHEMA_VERSION,
            self.identity,
            self.si.tolist(),
            self.sf.tolist(),
            self.bars_i.tolist(),
            self.bars_f.tolist(),
            self.book.tolist(),
            self.day.tolist(),
            [*self.last_meta.tolist(), self.emitted],
            self.last_values.tolist(),
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("features", state, _State, STATE_VERSION, self.identity)
        if s.schema != FEATURE_SCHEMA_VERSION:
            raise ValueError(
                f"features state is of feature schema {s.schema}; this build computes "
                f"{FEATURE_SCHEMA_VERSION}"
            )
        self.si[:], self.sf[:], self.day[:] = s.si, s.sf, s.day
        self.bars_i[:], self.bars_f[:], self.book[:] = s.bars_i, s.bars_f, s.book
        self.last_meta[:], self.emitted = s.last_meta[:3], s.last_meta[3]
        self.last_values[:] = s.last_values

    def inspect(self) -> dict[str, Any]:
        """Clock, cadence, and the last vector emitted: its header, then each feature by name."""
        flags = int(self.last_meta[2])
        return {
            "cadence": self.config.cadence,
            "clock": int(self.si[k.I_CLOCK]),
            "vectors_emitted": self.emitted,
            "last_ts_event": int(self.last_meta[0]),
            "last_cause": int(self.last_meta[1]),
            "last_flags": [name for bit, name in FEATURE_FLAGS if flags & bit],
            **dict(zip(NAMES, self.last_values.tolist(), strict=True)),
        }


def _defaults(spec: InstrumentSpec) -> dict[str, Any]:
    return dataclasses.asdict(features_config(spec))


FEATURES_STAGE = Stage(
    "features",
    FeaturesStage,
    (FEATURES_PORT,),
    inputs=("book",),
    defaults=_defaults,
    doc="65 features (volatility, returns, order flow, volume, technical, microstructure, "
    "temporal) at a cadence of trades, book changes or event time",
)
