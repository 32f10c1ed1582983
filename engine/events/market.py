"""High-volume market-data events: fixed-width 64-byte little-endian records.

Every market record shares one layout, ``MARKET_RECORD``: a header (type id, side, flags, a small
auxiliary integer, event and receive time) and five 64-bit payload slots. Each event type gives the
slots its own names through its own dtype, but the byte positions never move, so a batch of mixed
market events read from a journal is one zero-copy numpy array that a compiled loop can walk with
``MARKET_RECORD`` and branch on ``type_id``. This is the same idea as a tagged union in C (or the
MBO record of Databento's DBN): one size, one stride, many meanings.

Prices and sizes are exact fixed-point integers. The instrument's scales (announced in
``session.opened``) say what one unit is: ``price * 10**-price_scale`` in the quote currency.
Slots a type does not use must be zero; that keeps the encoding canonical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.events.types import Codec, EventType, FieldDoc, FieldSpec, fixed_dtype

RECORD_SIZE = 64
TIMESTAMP_OFFSET = 8
"""Byte offset of ``ts_event`` in every market record; the log uses it as the record timestamp."""

# Flags (bit set in the ``flags`` byte).
F_LAST = 0x01
"""Last record of one source message: the book is consistent after this record."""
F_FIRST = 0x02
"""First record of a multi-record source message (e.g. the first level of a snapshot)."""
F_HIDDEN = 0x04
"""The trade executed against hidden liquidity and changes no visible level."""

F_GAP = 0x08
"""The venue's update sequence broke at this message: the book is stale until the next snapshot."""

BUY = 1
SELL = -1
BID = 1
ASK = -1

# (name, numpy type, offset) of the shared header; every type has these at these offsets.
_HEADER: tuple[tuple[str, str, int, str], ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    ("side", "i1", 2, "+1 buy/bid, -1 sell/ask, 0 none (meaning per type)"),
    ("flags", "u1", 3, "bit set: 0x01 last of a source message, 0x02 first, 0x04 hidden, 0x08 gap"),
    ("aux", "<u4", 4, "small type-specific integer"),
    ("ts_event", "<i8", 8, "exchange event time, ns since the Unix epoch (UTC)"),
    ("ts_recv", "<i8", 16, "time the recorder or live feed received it, ns since the epoch (UTC)"),
)
_SLOTS = (24, 32, 40, 48, 56)


def _dtype(fields: tuple[FieldSpec, ...]) -> np.dtype[Any]:
    return fixed_dtype(fields, RECORD_SIZE)


MARKET_RECORD = _dtype(
    (
        *_HEADER,
        ("price", "<i8", 24, ""),
        ("size", "<i8", 32, ""),
        ("id", "<u8", 40, ""),
        ("price2", "<i8", 48, ""),
        ("size2", "<i8", 56, ""),
    )
)
"""The generic view of any market record: header plus the slots under neutral names."""


def _market_type(
    type_id: int,
    name: str,
    doc: str,
    slots: tuple[tuple[str, str, int, str], ...],
    *,
    side: str = "",
    aux: str = "",
) -> EventType:
    header = tuple(
        (n, t, o, {"side": side, "aux": aux}.get(n) or d)
        for n, t, o, d in _HEADER
        if not (n == "aux" and not aux)
    )
    fields = (*header, *slots)
    for _, _, offset, _ in slots:
        if offset not in _SLOTS:
            raise ValueError(f"{name}: slot offset {offset} is not one of {_SLOTS}")
    return EventType(
        type_id=type_id,
        name=name,
        version=1,
        codec=Codec.FIXED,
        doc=doc,
        fields=tuple(FieldDoc(n, np.dtype(t).name, d, o) for n, t, o, d in fields),
        dtype=_dtype(fields),
    )


TRADE = _market_type(
    1,
    "market.trade",
    "A trade print that changes no visible order: a trade stream message, or an execution "
    "against hidden liquidity (flag 0x04).",
    (
        ("price", "<i8", 24, "trade price, price units"),
        ("size", "<i8", 32, "traded quantity, size units"),
        ("trade_id", "<u8", 40, "venue trade id (0 when the venue has none)"),
    ),
    side="aggressor: +1 buyer-initiated, -1 seller-initiated, 0 unknown",
)
ORDER_ADDED = _market_type(
    2,
    "market.order_added",
    "L3: a new visible limit order rests in the book.",
    (
        ("price", "<i8", 24, "limit price, price units"),
        ("size", "<i8", 32, "displayed quantity, size units"),
        ("order_id", "<u8", 40, "venue order id"),
    ),
    side="+1 bid (buy order), -1 ask (sell order)",
)
ORDER_CANCELLED = _market_type(
    3,
    "market.order_cancelled",
    "L3: part of a resting order is cancelled; the order stays with its remaining quantity.",
    (
        ("price", "<i8", 24, "the order's limit price, price units"),
        ("size", "<i8", 32, "quantity cancelled, size units"),
        ("order_id", "<u8", 40, "venue order id"),
    ),
    side="+1 bid, -1 ask",
)
ORDER_DELETED = _market_type(
    4,
    "market.order_deleted",
    "L3: a resting order is removed entirely.",
    (
        ("price", "<i8", 24, "the order's limit price, price units"),
        ("size", "<i8", 32, "quantity removed, size units"),
        ("order_id", "<u8", 40, "venue order id"),
    ),
    side="+1 bid, -1 ask",
)
ORDER_EXECUTED = _market_type(
    5,
    "market.order_executed",
    "L3: a resting visible order is executed (fully or in part). This is also a trade print: "
    "the aggressor is on the opposite side of the resting order.",
    (
        ("price", "<i8", 24, "execution price, price units"),
        ("size", "<i8", 32, "executed quantity, size units"),
        ("order_id", "<u8", 40, "venue id of the resting order"),
    ),
    side="side of the resting order: +1 bid, -1 ask",
)
LEVEL_UPDATED = _market_type(
    6,
    "market.level_updated",
    "L2: the aggregate quantity at one price level is now `size` (0 removes the level). One "
    "source message (e.g. a Binance depthUpdate) becomes several records; the last has flag 0x01.",
    (
        ("price", "<i8", 24, "level price, price units"),
        ("size", "<i8", 32, "new absolute quantity at the level, size units"),
        ("update_id", "<u8", 40, "venue update id after this message (Binance `u`)"),
        ("first_update_id", "<i8", 48, "first venue update id in the message (Binance `U`)"),
    ),
    side="+1 bid, -1 ask",
)
QUOTE = _market_type(
    7,
    "market.quote",
    "Top of book: best bid and ask with their sizes, as published by the venue.",
    (
        ("bid_price", "<i8", 24, "best bid price, price units"),
        ("bid_size", "<i8", 32, "quantity at the best bid, size units"),
        ("update_id", "<u8", 40, "venue update id of the book state it reflects (0 if none)"),
        ("ask_price", "<i8", 48, "best ask price, price units"),
        ("ask_size", "<i8", 56, "quantity at the best ask, size units"),
    ),
)
BOOK_SNAPSHOT = _market_type(
    8,
    "market.book_snapshot",
    "One price level of a full book snapshot. The levels of one snapshot share `update_id` and "
    "are consecutive; the first has flag 0x02 and the last flag 0x01. A snapshot replaces the "
    "whole book.",
    (
        ("price", "<i8", 24, "level price, price units"),
        ("size", "<i8", 32, "quantity at the level, size units"),
        ("update_id", "<u8", 40, "venue update id the snapshot reflects (Binance lastUpdateId)"),
    ),
    side="+1 bid, -1 ask",
    aux="level index within its side, 0 = best",
)

ORDER_MODIFIED = _market_type(
    20,
    "market.order_modified",
    "L3: a resting order now has this price and displayed quantity (Databento MBO `M`). The "
    "book moves the order's old quantity off its old level and onto the new one; a modify of an "
    "order the book does not hold adds it.",
    (
        ("price", "<i8", 24, "the order's new limit price, price units"),
        ("size", "<i8", 32, "the order's new displayed quantity, size units"),
        ("order_id", "<u8", 40, "venue order id"),
    ),
    side="+1 bid, -1 ask",
)
ORDER_FILLED = _market_type(
    21,
    "market.order_filled",
    "L3: a resting order was filled (Databento MBO `F`). It changes no level by itself: the "
    "venue sends the cancel or modify that takes the quantity off the book; the trade print is "
    "the aggressor's `market.trade`.",
    (
        ("price", "<i8", 24, "fill price, price units"),
        ("size", "<i8", 32, "filled quantity, size units"),
        ("order_id", "<u8", 40, "venue id of the resting order"),
    ),
    side="side of the resting order: +1 bid, -1 ask, 0 not given",
)
BOOK_CLEARED = _market_type(
    22,
    "market.book_cleared",
    "L3: every resting order and level of the instrument is removed (Databento MBO `R`, e.g. "
    "before a snapshot of the book is sent again).",
    (),
)

MARKET_TYPES: tuple[EventType, ...] = (
    TRADE,
    ORDER_ADDED,
    ORDER_CANCELLED,
    ORDER_DELETED,
    ORDER_EXECUTED,
    LEVEL_UPDATED,
    QUOTE,
    BOOK_SNAPSHOT,
    ORDER_MODIFIED,
    ORDER_FILLED,
    BOOK_CLEARED,
)


def new_records(event_type: EventType, n: int) -> np.ndarray[Any, np.dtype[Any]]:
    """Zeroed records of ``event_type`` (type id filled in), ready for its fields to be set."""
    if event_type.dtype is None:
        raise TypeError(f"{event_type.name} is not a fixed-width event type")
    records = np.zeros(n, dtype=event_type.dtype)
    records["type_id"] = event_type.type_id
    return records


def as_market(records: np.ndarray[Any, np.dtype[Any]]) -> np.ndarray[Any, np.dtype[Any]]:
    """View records of any market type (or raw bytes) through the generic ``MARKET_RECORD``."""
    if records.dtype == MARKET_RECORD:
        return records
    return np.frombuffer(records.data, dtype=MARKET_RECORD)
