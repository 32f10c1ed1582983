"""Log records as store rows: one function per kind of topic, from a batch to rows per table.

A mapper takes one batch read from a topic partition and returns ``{table: [part, ...]}``, each
part either a :class:`~engine.app.store.frame.Frame` (fixed-width batches: one numpy column per
table column, no Python object per value, so PostgreSQL's binary COPY is built with numpy) or a
list of row tuples in the table's column order (msgpack batches, decoded event by event: they
are low rate). What each table takes from each event is documented in docs/analysts.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import numpy as np

from engine.app.store.frame import COLUMNS, Frame
from engine.app.store.pgcopy import Encoded
from engine.app.store.schema import CLASS_NAMES, PROBABILITY_SETS
from engine.events import by_name, decode, type_of
from engine.events.catalogue import is_msgpack
from engine.events.control import (
    CandidateEvaluated,
    ClockTicked,
    FeedGapDetected,
    ModelPromoted,
    RecordQuarantined,
    SessionOpened,
)
from engine.events.decisions import AGENTS, CONTRIBUTORS
from engine.events.market import MARKET_RECORD
from engine.log import Batch, FixedBatch, RecordBatch
from streams.features.schema import NAMES as FEATURE_NAMES

Row = tuple[Any, ...]
Part = Frame | list[Row] | Encoded
"""Some rows of one table: columns (fixed-width records), row tuples (decoded events) or a
frame already encoded for PostgreSQL's COPY (by the projector, just before it commits)."""
Rows = dict[str, list[Part]]
Mapper = Callable[[Batch], Rows]

__all__ = ["COLUMNS", "Frame", "Mapper", "Part", "Row", "Rows", "merge", "part_rows"]

TRADE_TYPES = (1, 5)
"""``market.trade`` and ``market.order_executed``: the rows of ``trades``."""
DELTA_TYPES = (2, 3, 4, 6, 8)
"""Order added / cancelled / deleted, level updated, snapshot level: ``book_deltas``."""

Columns = dict[str, Any]
"""Column name -> a numpy array of that column's values (one per row) or a constant."""


def part_rows(part: Part) -> list[Row]:
    """A part's rows as tuples in the table's column order."""
    assert not isinstance(part, Encoded), "an encoded frame is for PostgreSQL's COPY only"
    return part.rows() if isinstance(part, Frame) else part


def ints(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An integer column as int64 (unsigned ids as signed 64-bit, see docs/analysts.md)."""
    return values.astype(np.int64)


def floats(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A float column as contiguous float64 (``NaN`` is stored as NULL)."""
    return np.ascontiguousarray(values, dtype=np.float64)


def _position(batch: Batch, run_id: str | None, offsets: np.ndarray[Any, Any]) -> Columns:
    return {
        "topic": batch.topic,
        "partition": batch.partition,
        "offset": offsets,
        "run_id": run_id,
    }


# --- session journals ---------------------------------------------------------------------------


def journal_mapper(session: str, book_deltas: bool) -> Mapper:
    """Rows of a session journal: trades and low-rate events, or (``book_deltas``) only the
    book changes, which a consumer group of their own projects."""

    def rows(batch: Batch) -> Rows:
        if isinstance(batch, FixedBatch):
            base = np.arange(batch.base_offset, batch.next_offset, dtype=np.int64)
            return _market(batch, session, book_deltas, batch.view(MARKET_RECORD), base)
        out: Rows = {}
        market: list[bytes] = []
        at: list[int] = []
        for i, (_, _, _, value) in enumerate(batch.records):
            offset = batch.base_offset + i
            if value and not is_msgpack(value):
                market.append(bytes(value))
                at.append(offset)
            elif not book_deltas:
                merge(out, _journal_event(batch, session, offset, decode(value)))
        if market:
            records = np.frombuffer(b"".join(market), dtype=MARKET_RECORD)
            offsets = np.array(at, dtype=np.int64)
            merge(out, _market(batch, session, book_deltas, records, offsets))
        return out

    return rows


def merge(into: Rows, rows: Rows) -> None:
    """Add ``rows`` to ``into``; consecutive row lists of a table become one list."""
    for table, parts in rows.items():
        have = into.setdefault(table, [])
        for part in parts:
            if isinstance(part, list) and have and isinstance(have[-1], list):
                have[-1].extend(part)
            else:
                have.append(list(part) if isinstance(part, list) else part)


def _market(
    batch: Batch,
    session: str,
    book_deltas: bool,
    records: np.ndarray[Any, Any],
    at: np.ndarray[Any, Any],
) -> Rows:
    """Trades (or book changes) of market ``records`` whose log offsets are ``at``."""
    types = records["type_id"]
    wanted = np.isin(types, DELTA_TYPES if book_deltas else TRADE_TYPES)
    index = np.flatnonzero(wanted)
    if len(index) == 0:
        return {}
    picked = records[index]
    offsets = at[index]
    columns = {
        **_position(batch, None, offsets),
        "cause": offsets,
        "session": session,
        **{name: np.ascontiguousarray(picked[name]) for name in _MARKET_COLUMNS},
    }
    ids = ints(picked["id"])
    if book_deltas:
        columns["aux"] = np.ascontiguousarray(picked["aux"])
        columns["venue_id"] = ids
        columns["first_update_id"] = np.ascontiguousarray(picked["price2"])
        return {"book_deltas": [Frame("book_deltas", len(index), columns)]}
    is_trade = picked["type_id"] == TRADE_TYPES[0]
    columns["trade_id"] = columns["order_id"] = ids
    nulls = {"trade_id": ~is_trade, "order_id": is_trade}
    return {"trades": [Frame("trades", len(index), columns, nulls)]}


_MARKET_COLUMNS = ("type_id", "side", "flags", "ts_event", "ts_recv", "price", "size")


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
            "sessions": [[_row("sessions", base, venue=spec["venue"], symbol=spec["symbol"],
                               source=event.source)]],
            "instruments": [[_row("instruments", _without(base, "ts_recv"), **spec)]],
        }  # fmt: skip
    if isinstance(event, FeedGapDetected):
        return {"gaps": [[_row("gaps", base, **_fields(event))]]}
    if isinstance(event, RecordQuarantined):
        return {"quarantine": [[_row("quarantine", base, **_fields(event))]]}
    name = type_of(event).name
    if isinstance(event, ModelPromoted | CandidateEvaluated):
        row = _row("model_events", base, kind=name, **_model_event(event))
        return {"model_events": [[row]]}
    if name in _CONTROL_KINDS:
        fields = _fields(event)
        fields.pop("session", None)  # session.closed names its own session: the journal's
        return {"control_events": [[_row("control_events", base, kind=name, **fields)]]}
    return {}


def _model_event(event: ModelPromoted | CandidateEvaluated) -> dict[str, Any]:
    """A lifecycle event's columns: the bundle it is about and the one it was compared with
    or replaced."""
    fields = _fields(event)
    if isinstance(event, CandidateEvaluated):
        fields["bundle"], fields["previous"] = fields.pop("candidate"), fields.pop("current")
        fields["evaluated_session"] = fields.pop("session")
    return fields


def _without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


def _fields(event: msgspec.Struct) -> dict[str, Any]:
    fields = msgspec.structs.asdict(event)
    for key in ("ts_event", "ts_recv", "cause"):
        fields.pop(key, None)
    return fields


_COLUMN_SETS = {table: frozenset(names) for table, names in COLUMNS.items()}


def _row(table: str, base: dict[str, Any], **fields: Any) -> Row:
    values = {**base, **fields}
    if not _COLUMN_SETS[table].issuperset(values):
        unknown = sorted(set(values) - _COLUMN_SETS[table])
        raise AssertionError(f"{table} has no column for {unknown}")
    # NaN is stored as NULL; `v != v` is true only for NaN (floats from msgspec are floats).
    return tuple(None if v != v else v for v in map(values.get, COLUMNS[table]))


def _null_nan(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def quarantine_mapper(session: str) -> Mapper:
    """Rows of a session's quarantine topic."""

    def rows(batch: Batch) -> Rows:
        assert isinstance(batch, RecordBatch)
        out: Rows = {}
        for i, (_, _, _, value) in enumerate(batch.records):
            merge(out, _journal_event(batch, session, batch.base_offset + i, decode(value)))
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
            offsets = np.arange(batch.base_offset, batch.base_offset + n, dtype=np.int64)
            columns = {
                **_position(batch, run_id, offsets),
                "cause": ints(records[cause]),
                "ts_event": ints(records["ts_event"]),
                **own(records),
            }
            return {table: [Frame(table, n, columns)]}

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
    return {"two_sided": r["two_sided"] != 0, **_plain(r, names)}


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
            return {table: [out]} if out else {}

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
    "model.switched": _struct_mapper("model_switches", {}),
}
"""Run topic schema -> (table, mapper factory taking the run id). Other schemas are skipped."""


def trading_report_rows(run_id: str, report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of ``trading_reports`` from a manifest's ``report.trading`` (none without one)."""
    if not report:
        return []
    windows = [report.get("out_of_sample"), report.get("in_sample"), *report.get("bundles", [])]
    out = []
    for part in windows:
        if part is None:
            continue
        w, a, b = part["window"], part["account"], part.get("baselines") or {}
        row = {
            "run_id": run_id,
            "window": w["name"],
            "sample": w["sample"],
            "bundle": w.get("bundle", ""),
            "intervals": msgspec.json.encode(w["intervals"]).decode(),
            "first_ts": w["first_ts"],
            "last_ts": w["last_ts"],
            **{k: a[k] for k in ("round_trips", "wins", "fills", "net_pnl", "fees")},
            **{k: a[k] for k in ("sharpe", "max_drawdown", "exposure")},
            "buy_and_hold_pnl": b.get("buy_and_hold"),
            "random_median_pnl": b.get("random_median"),
            "random_p05_pnl": b.get("random_p05"),
            "random_p95_pnl": b.get("random_p95"),
            "random_beaten_share": b.get("random_beaten_share"),
            "beats_no_trade": b.get("beats_no_trade"),
            "beats_buy_and_hold": b.get("beats_buy_and_hold"),
            "beats_random": b.get("beats_random"),
        }
        out.append({k: _null_nan(v) for k, v in row.items()})
    return out
