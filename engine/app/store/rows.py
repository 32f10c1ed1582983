"""Log records as store rows: one function per kind of topic, from a batch to rows per table.

A mapper takes one batch read from a topic partition and returns ``{table: [row, ...]}``, each
row a tuple in the table's column order (``Base.metadata``). Fixed-width batches are turned
into columns with numpy (one ``tolist`` per column, ``NaN`` replaced by ``None``) and zipped
into rows; msgpack batches are decoded event by event (they are low rate). What each table
takes from each event is documented in docs/analysts.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any

import msgspec
import numpy as np

from engine.app.store.schema import CLASS_NAMES, PROBABILITY_SETS, Base
from engine.events import by_name, decode, type_of
from engine.events.catalogue import is_msgpack
from engine.events.control import (
    ClockTicked,
    FeedGapDetected,
    RecordQuarantined,
    SessionOpened,
)
from engine.events.decisions import AGENTS, CONTRIBUTORS
from engine.events.market import MARKET_RECORD
from engine.log import Batch, FixedBatch, RecordBatch
from streams.features.schema import NAMES as FEATURE_NAMES

Row = tuple[Any, ...]
Rows = dict[str, list[Row]]
Mapper = Callable[[Batch], Rows]

COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns) for name, table in Base.metadata.tables.items()
}
"""Column names of every table, in table order: the order of a row's values."""

TRADE_TYPES = (1, 5)
"""``market.trade`` and ``market.order_executed``: the rows of ``trades``."""
DELTA_TYPES = (2, 3, 4, 6, 8)
"""Order added / cancelled / deleted, level updated, snapshot level: ``book_deltas``."""

Columns = dict[str, Any]
"""Column name -> a list (or an iterator) of that column's values, one per row."""


def _rows(table: str, columns: Columns) -> list[Row]:
    names = COLUMNS[table]
    missing = [n for n in names if n not in columns]
    assert not missing, f"{table}: no value for {missing}"
    return list(zip(*(columns[n] for n in names), strict=False))


def floats(values: np.ndarray[Any, Any]) -> list[float | None]:
    """A float column as Python values, ``NaN`` as ``None`` (SQL NULL)."""
    out: list[float | None] = values.tolist()
    nan = np.isnan(values)
    if nan.any():
        for i in np.flatnonzero(nan).tolist():
            out[i] = None
    return out


def ints(values: np.ndarray[Any, Any]) -> list[int]:
    """An integer column as Python ints (unsigned ids as signed 64-bit, see docs/analysts.md)."""
    out: list[int] = values.astype(np.int64).tolist()
    return out


def _position(batch: Batch, run_id: str | None, n: int, offsets: list[int]) -> Columns:
    return {
        "topic": repeat(batch.topic, n),
        "partition": repeat(batch.partition, n),
        "offset": offsets,
        "run_id": repeat(run_id, n),
    }


# --- session journals ---------------------------------------------------------------------------


def journal_mapper(session: str, book_deltas: bool) -> Mapper:
    """Rows of a session journal: trades and low-rate events, or (``book_deltas``) only the
    book changes, which a consumer group of their own projects."""

    def rows(batch: Batch) -> Rows:
        if isinstance(batch, FixedBatch):
            return _market(
                batch, session, book_deltas, batch.view(MARKET_RECORD), batch.base_offset
            )
        out: Rows = {}
        for i, (_, _, _, value) in enumerate(batch.records):
            offset = batch.base_offset + i
            if value and not is_msgpack(value):
                market = np.frombuffer(bytes(value), dtype=MARKET_RECORD)
                _merge(out, _market(batch, session, book_deltas, market, offset))
            elif not book_deltas:
                _merge(out, _journal_event(batch, session, offset, decode(value)))
        return out

    return rows


def _merge(into: Rows, rows: Rows) -> None:
    for table, values in rows.items():
        into.setdefault(table, []).extend(values)


def _market(
    batch: Batch, session: str, book_deltas: bool, records: np.ndarray[Any, Any], base: int
) -> Rows:
    types = records["type_id"]
    wanted = np.isin(types, DELTA_TYPES if book_deltas else TRADE_TYPES)
    index = np.flatnonzero(wanted)
    if len(index) == 0:
        return {}
    picked = records[index]
    n = len(index)
    offsets = (index + base).tolist()
    columns = {
        **_position(batch, None, n, offsets),
        "cause": offsets,
        "session": repeat(session, n),
        "type_id": picked["type_id"].tolist(),
        "side": picked["side"].tolist(),
        "flags": picked["flags"].tolist(),
        "ts_event": picked["ts_event"].tolist(),
        "ts_recv": picked["ts_recv"].tolist(),
        "price": picked["price"].tolist(),
        "size": picked["size"].tolist(),
    }
    ids = picked["id"].astype(np.int64)
    if book_deltas:
        columns["aux"] = picked["aux"].tolist()
        columns["venue_id"] = ids.tolist()
        columns["first_update_id"] = picked["price2"].tolist()
        return {"book_deltas": _rows("book_deltas", columns)}
    is_trade = picked["type_id"] == TRADE_TYPES[0]
    trade_id = ids.astype(object)
    order_id = trade_id.copy()
    trade_id[~is_trade] = None
    order_id[is_trade] = None
    columns["trade_id"] = trade_id.tolist()
    columns["order_id"] = order_id.tolist()
    return {"trades": _rows("trades", columns)}


_CONTROL_KINDS = {
    "session.closed",
    "control.halt_trading",
    "control.resume_trading",
    "control.flatten_position",
    "feed.trading_status_changed",
}


def _journal_event(batch: Batch, session: str, offset: int, event: Any) -> Rows:
    if isinstance(event, ClockTicked):
        return {}
    base = {
        "topic": batch.topic,
        "partition": batch.partition,
        "offset": offset,
        "run_id": None,
        "cause": offset,
        "session": session,
        "ts_event": event.ts_event,
        "ts_recv": event.ts_recv,
    }
    if isinstance(event, SessionOpened):
        spec = msgspec.structs.asdict(event.instrument)
        return {
            "sessions": [_row("sessions", base, venue=spec["venue"], symbol=spec["symbol"],
                              source=event.source)],
            "instruments": [_row("instruments", _without(base, "ts_recv"), **spec)],
        }  # fmt: skip
    if isinstance(event, FeedGapDetected):
        return {"gaps": [_row("gaps", base, **_fields(event))]}
    if isinstance(event, RecordQuarantined):
        return {"quarantine": [_row("quarantine", base, **_fields(event))]}
    name = type_of(event).name
    if name in _CONTROL_KINDS:
        fields = _fields(event)
        fields.pop("session", None)  # session.closed names its own session: the journal's
        return {"control_events": [_row("control_events", base, kind=name, **fields)]}
    return {}


def _without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


def _fields(event: msgspec.Struct) -> dict[str, Any]:
    fields = msgspec.structs.asdict(event)
    for key in ("ts_event", "ts_recv", "cause"):
        fields.pop(key, None)
    return fields


def _row(table: str, base: dict[str, Any], **fields: Any) -> Row:
    values = {**base, **fields}
    unknown = set(values) - set(COLUMNS[table])
    assert not unknown, f"{table} has no column for {sorted(unknown)}"
    return tuple(_null_nan(values.get(name)) for name in COLUMNS[table])


def _null_nan(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def quarantine_mapper(session: str) -> Mapper:
    """Rows of a session's quarantine topic."""

    def rows(batch: Batch) -> Rows:
        assert isinstance(batch, RecordBatch)
        out: Rows = {}
        for i, (_, _, _, value) in enumerate(batch.records):
            _merge(out, _journal_event(batch, session, batch.base_offset + i, decode(value)))
        return out

    return rows


# --- run topics -------------------------------------------------------------------------------


MapperFactory = Callable[[str], Mapper]
"""Makes the mapper of one run's topic, given the run id."""


def _fixed_mapper(
    schema: str, table: str, cause: str, own: Callable[[np.ndarray[Any, Any]], Columns]
) -> tuple[str, MapperFactory]:
    dtype = by_name(schema).dtype
    assert dtype is not None, schema

    def make(run_id: str) -> Mapper:
        def rows(batch: Batch) -> Rows:
            assert isinstance(batch, FixedBatch)
            records = batch.view(dtype)
            n = len(records)
            offsets = list(range(batch.base_offset, batch.base_offset + n))
            columns = {
                **_position(batch, run_id, n, offsets),
                "cause": ints(records[cause]),
                "ts_event": records["ts_event"].tolist(),
                **own(records),
            }
            return {table: _rows(table, columns)}

        return rows

    return table, make


def _plain(records: np.ndarray[Any, Any], names: Iterable[str]) -> Columns:
    out: Columns = {}
    for name in names:
        column = records[name]
        out[name] = floats(column) if column.dtype.kind == "f" else ints(column)
    return out


def _top(r: np.ndarray[Any, Any]) -> Columns:
    best = {f: ints(r[f][:, 0]) for f in ("bid_price", "bid_size", "ask_price", "ask_size")}
    return {**_plain(r, ("status", "ts_recv", "update_id")), **best}


def _mid(r: np.ndarray[Any, Any]) -> Columns:
    names = ("spread", "mid", "microprice", "log_return", "ewm_variance")
    return {"two_sided": (r["two_sided"] != 0).tolist(), **_plain(r, names)}


def _features(r: np.ndarray[Any, Any]) -> Columns:
    values = r["values"]
    own = {name: floats(values[:, i]) for i, name in enumerate(FEATURE_NAMES)}
    return {**_plain(r, ("flags", "schema")), **own}


def _label(r: np.ndarray[Any, Any]) -> Columns:
    names = ("label", "flags", "origin", "origin_ts", "mid_start", "mid_end", "move")
    return _plain(r, names)


def _prediction(r: np.ndarray[Any, Any]) -> Columns:
    out = _plain(r, ("flags", "direction", "confidence"))
    for group in PROBABILITY_SETS:
        for k, cls in enumerate(CLASS_NAMES):
            out[f"{group}_{cls}"] = floats(r[group][:, k])
    return out


def _votes(r: np.ndarray[Any, Any]) -> Columns:
    out: Columns = {}
    for i, agent in enumerate(AGENTS):
        out[f"{agent}_vote"] = ints(r["votes"][:, i])
        out[f"{agent}_confidence"] = floats(r["confidence"][:, i])
        out[f"{agent}_reasons"] = ints(r["reasons"][:, i])
    return out


def _decision(r: np.ndarray[Any, Any]) -> Columns:
    names = ("flags", "direction", "confidence", "score", "model_score", "agent_score")
    out = _plain(r, names)
    for i, who in enumerate(CONTRIBUTORS):
        out[f"{who}_vote"] = ints(r["votes"][:, i])
        out[f"{who}_weight"] = floats(r["weights"][:, i])
        out[f"{who}_confidence"] = floats(r["confidences"][:, i])
    return out


def _portfolio(r: np.ndarray[Any, Any]) -> Columns:
    names = ("reason", "position", "avg_price", "mid", "realised", "unrealised", "fees")
    return _plain(r, (*names, "equity", "peak_equity", "drawdown", "exposure"))


def _struct_mapper(table: str, renames: dict[str, str]) -> tuple[str, MapperFactory]:
    def make(run_id: str) -> Mapper:
        def rows(batch: Batch) -> Rows:
            assert isinstance(batch, RecordBatch)
            out: list[Row] = []
            for i, (_, _, _, value) in enumerate(batch.records):
                event = decode(value)
                fields = {renames.get(k, k): v for k, v in msgspec.structs.asdict(event).items()}
                base = {
                    "topic": batch.topic,
                    "partition": batch.partition,
                    "offset": batch.base_offset + i,
                    "run_id": run_id,
                    "kind": type_of(event).name,
                }
                out.append(_row(table, base, **fields))
            return {table: out} if out else {}

        return rows

    return table, make


RUN_TABLES: dict[str, tuple[str, MapperFactory]] = {
    "book.top": _fixed_mapper("book.top", "top_of_book", "offset", _top),
    "book.mid": _fixed_mapper("book.mid", "mids", "cause", _mid),
    "features.vector": _fixed_mapper("features.vector", "feature_vectors", "cause", _features),
    "labels.label": _fixed_mapper("labels.label", "labels", "cause", _label),
    "model.prediction": _fixed_mapper("model.prediction", "predictions", "cause", _prediction),
    "agents.votes": _fixed_mapper("agents.votes", "votes", "cause", _votes),
    "consensus.decision": _fixed_mapper("consensus.decision", "decisions", "cause", _decision),
    "portfolio.state": _fixed_mapper("portfolio.state", "portfolio_states", "cause", _portfolio),
    "trading.risk": _struct_mapper(
        "risk_events", {"limit": "limit_value", "start_equity": "equity"}
    ),
    "trading.orders": _struct_mapper("orders", {"kind": "order_type"}),
    "trading.executions": _struct_mapper("executions", {}),
}
"""Run topic schema -> (table, mapper factory taking the run id). Other schemas are skipped."""
