"""Low-rate events: sessions, the clock, operator commands and quarantined input.

These are msgspec Structs encoded as msgpack arrays (``array_like``) whose first element is the
type id (the struct's tag). Field order is the encoding order, so fields are only ever appended in
a new version, never reordered. Facts are named in the past tense, commands in the imperative.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class InstrumentSpec(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """What an integer price or size in this session's market records means."""

    symbol: Annotated[str, _doc("venue symbol, e.g. BTCUSDT or AAPL")]
    venue: Annotated[str, _doc("venue code, e.g. BINANCE-SPOT, NASDAQ, B3")]
    time_zone: Annotated[str, _doc("IANA zone of the venue's trading day, e.g. America/New_York")]
    price_scale: Annotated[int, _doc("price = integer * 10**-price_scale, in the quote currency")]
    size_scale: Annotated[int, _doc("size = integer * 10**-size_scale, in the base unit")]
    tick_size: Annotated[int, _doc("minimum price increment, in price units")]
    lot_size: Annotated[int, _doc("minimum size increment, in size units")]
    currency: Annotated[str, _doc("quote currency, e.g. USD, USDT, BRL")]


class _Event(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    ts_event: Annotated[int, _doc("when it happened, ns since the Unix epoch (UTC)")]
    ts_recv: Annotated[int, _doc("when Tapedeck received or created it, ns since the epoch")]


class SessionOpened(_Event, tag=100, frozen=True):
    """A session journal begins: which instrument, from where, and how its numbers are scaled."""

    session: Annotated[str, _doc("session name, unique in the data directory")]
    instrument: Annotated[InstrumentSpec, _doc("the instrument this partition carries")]
    source: Annotated[str, _doc("where the events come from: importer and input, or feed")]


class SessionClosed(_Event, tag=101, frozen=True):
    """A session journal ends; no market event follows it (unless ``session.resumed`` reopens
    a live session stopped by its operator)."""

    session: Annotated[str, _doc("session name")]
    reason: Annotated[str, _doc("why it closed: end of input, end of trading day, operator")]


class ClockTicked(_Event, tag=102, frozen=True):
    """Event time advanced to ``ts_event`` with no market event; lets timers fire in replay."""


class HaltTrading(_Event, tag=103, frozen=True):
    """Operator command: stop sending new orders (open orders are left to risk to manage)."""

    reason: Annotated[str, _doc("why, as the operator gave it")]
    operator: Annotated[str, _doc("who issued the command")]


class ResumeTrading(_Event, tag=104, frozen=True):
    """Operator command: allow new orders again after ``control.halt_trading``."""

    operator: Annotated[str, _doc("who issued the command")]


class FlattenPosition(_Event, tag=108, frozen=True):
    """Operator command: close the whole position now (cancel working orders, exit at market).

    Journaled by ``tape flatten`` or the dashboard's flatten button (``tape serve
    --control``); like every command it takes effect where the journal puts it, so a replay
    flattens at the same event.
    """

    reason: Annotated[str, _doc("why, as the operator gave it")]
    operator: Annotated[str, _doc("who issued the command")]


class RecordQuarantined(_Event, tag=105, frozen=True):
    """An input record that could not be turned into events, kept with where it came from."""

    source: Annotated[str, _doc("input file (or feed) the record came from")]
    line: Annotated[int, _doc("1-based line or row number in the source")]
    byte_offset: Annotated[
        int, _doc("offset of the record's first byte in the (decompressed) source")
    ]
    raw: Annotated[str, _doc("the record's text as read, undecodable bytes escaped")]
    reason: Annotated[str, _doc("short machine-readable reason, e.g. bad_json, negative_size")]
    detail: Annotated[str, _doc("human-readable explanation")]


class FeedGapDetected(_Event, tag=106, frozen=True):
    """The venue's update sequence broke; the book is stale until the next snapshot."""

    expected_update_id: Annotated[int, _doc("the update id continuity required next")]
    received_update_id: Annotated[int, _doc("the update id that arrived instead")]
    detail: Annotated[str, _doc("which continuity rule was broken")]


class TradingStatusChanged(_Event, tag=107, frozen=True):
    """The venue halted, resumed quoting or resumed trading in the instrument."""

    status: Annotated[str, _doc("halted, quoting (quotes allowed, no trading) or trading")]
    detail: Annotated[str, _doc("the venue's own indication, e.g. LOBSTER type 7 price -1")]


class BookDescribed(_Event, tag=80, frozen=True):
    """What the session's market data can tell about the order book, when the venue's default
    does not say it: how many levels a side the source covers, and whether quotes are the book.

    The ``book`` processor follows it from here on instead of its venue's rules (and never
    sequences such a book by venue update ids). Importers write it right after
    ``session.opened`` (a LOBSTER file of other than 10 levels, Tardis, Databento)."""

    depth: Annotated[
        int, _doc("levels a side the source reports; the book keeps that many (0: every level)")
    ]
    quotes: Annotated[
        bool, _doc("market.quote records are the whole level-1 book (top-of-book-only sources)")
    ]
    detail: Annotated[str, _doc("where this comes from, e.g. the LOBSTER file's 5 levels")]


class InstrumentDefined(_Event, tag=81, frozen=True):
    """The venue's definition of the session's instrument (a Databento definition record)."""

    instrument_id: Annotated[int, _doc("the venue's (or vendor's) numeric instrument id")]
    symbol: Annotated[str, _doc("raw symbol, e.g. ESU4")]
    instrument_class: Annotated[str, _doc("F future, O option, K stock, ... (vendor's code)")]
    exchange: Annotated[str, _doc("exchange MIC, e.g. XCME")]
    currency: Annotated[str, _doc("currency prices are quoted in")]
    tick_size: Annotated[int, _doc("minimum price increment, in the session's price units")]
    multiplier: Annotated[
        str, _doc("contract value per 1.0 of price, exact decimal (e.g. 50): unit of measure qty")
    ]
    unit_of_measure: Annotated[str, _doc("unit the multiplier is in, e.g. IPNT (index points)")]
    expiration: Annotated[int, _doc("expiration, ns since the epoch (0: none)")]
    source: Annotated[str, _doc("where the definition came from: file and record")]


class FeedSubscribed(_Event, tag=82, frozen=True):
    """A live feed connected to the venue and subscribed to its streams; a snapshot follows."""

    url: Annotated[str, _doc("the stream endpoint connected to")]
    streams: Annotated[list[str], _doc("the venue's stream names subscribed to")]
    connection: Annotated[int, _doc("1 for the session's first connection, then 2, 3...")]


class FeedDisconnected(_Event, tag=83, frozen=True):
    """A live feed's connection ended; it reconnects, resubscribes and re-snapshots."""

    connection: Annotated[int, _doc("the connection that ended (see feed.subscribed)")]
    reason: Annotated[str, _doc("closed (by the venue), error, timeout or stopped")]
    detail: Annotated[str, _doc("close code and reason, or the error, as received")]


class SessionResumed(_Event, tag=84, frozen=True):
    """A live session closed by its operator (``session.closed``) continues in this journal."""

    session: Annotated[str, _doc("session name")]
    reason: Annotated[str, _doc("why it resumed, e.g. tape live restarted")]


OperatorCommand = HaltTrading | ResumeTrading | FlattenPosition
"""The commands an operator can journal (the dashboard's halt, resume and flatten buttons)."""


class ModelPromoted(_Event, tag=64, frozen=True):
    """A model bundle was promoted: from this journal event on, the ``models`` stage evaluates
    it instead of the bundle (or walk-forward schedule) it had. Written by ``tape models
    promote`` (an operator) or by a retraining gate that passed; a replay switches model at
    exactly this event."""

    bundle: Annotated[str, _doc("full sha256 of the promoted bundle (or walk-forward card)")]
    previous: Annotated[str, _doc("the bundle the promoter believed current; empty if none")]
    reason: Annotated[str, _doc("why: operator, or gate (a candidate_evaluated event precedes)")]
    operator: Annotated[str, _doc("who or what promoted it")]


class CandidateEvaluated(_Event, tag=65, frozen=True):
    """A retraining gate compared a candidate bundle with the current one and the baseline on
    the latest fold of labelled data, out of sample for both; journaled whatever it decided
    (a ``model.promoted`` follows when the candidate was promoted)."""

    candidate: Annotated[str, _doc("full sha256 of the candidate bundle")]
    current: Annotated[str, _doc("the bundle in effect when it was evaluated; empty if none")]
    session: Annotated[str, _doc("session whose labels formed the evaluation fold")]
    fold_first: Annotated[int, _doc("journal offset of the fold's first feature vector")]
    fold_last: Annotated[int, _doc("journal offset of the fold's last feature vector")]
    rows: Annotated[int, _doc("labelled vectors in the fold")]
    candidate_log_loss: Annotated[float, _doc("the candidate meta-learner's log loss on the fold")]
    current_log_loss: Annotated[float, _doc("the current bundle's log loss on it (NaN: none)")]
    baseline_log_loss: Annotated[
        float, _doc("log loss of the candidate's training class frequencies on it")
    ]
    promoted: Annotated[bool, _doc("whether the candidate beat both and was promoted")]
    detail: Annotated[str, _doc("the decision in words")]


CONTROL_STRUCTS: tuple[tuple[str, type[_Event]], ...] = (
    ("session.opened", SessionOpened),
    ("session.closed", SessionClosed),
    ("clock.ticked", ClockTicked),
    ("control.halt_trading", HaltTrading),
    ("control.resume_trading", ResumeTrading),
    ("control.flatten_position", FlattenPosition),
    ("quarantine.record_quarantined", RecordQuarantined),
    ("feed.gap_detected", FeedGapDetected),
    ("feed.trading_status_changed", TradingStatusChanged),
    ("model.promoted", ModelPromoted),
    ("model.candidate_evaluated", CandidateEvaluated),
    ("feed.book_described", BookDescribed),
    ("instrument.defined", InstrumentDefined),
    ("feed.subscribed", FeedSubscribed),
    ("feed.disconnected", FeedDisconnected),
    ("session.resumed", SessionResumed),
)
"""(stable name, struct) of every low-rate event type; the tag is its type id."""
