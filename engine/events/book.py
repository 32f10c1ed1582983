"""Derived order-book events: the top N levels after a source message changed them.

``book.top`` is fixed-width but wider than a market record (360 bytes: ten levels a side), so it
lives in its own fixed topic (a run's ``run.<run id>.book``), never in a journal. The same
layout carries the LOBSTER orderbook oracle (``<session>.oracle``), which is what makes
``tape book-check`` a field-by-field comparison of two arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.events.types import Codec, EventType, FieldDoc, FieldSpec, fixed_dtype

TOP_LEVELS = 10
"""Levels per side in a ``book.top`` record."""

# status bits of book.top
S_SYNCED = 0x01
"""The book has been initialised from a snapshot."""
S_STALE = 0x02
"""A feed gap was seen after the last snapshot: the book may be wrong until the next one."""

_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    ("status", "u1", 2, "bit set: 0x01 synced (a snapshot was applied), 0x02 stale (gap since)"),
    ("levels", "u1", 3, "levels per side carried (10)"),
    ("ts_event", "<i8", 8, "event time of the causing journal record, ns since the epoch (UTC)"),
    ("ts_recv", "<i8", 16, "receive time of the causing journal record, ns since the epoch"),
    ("offset", "<u8", 24, "journal offset of the record that completed the change (causation)"),
    ("update_id", "<u8", 32, "venue update id of the book state (0 when the venue has none)"),
    ("bid_price", ("<i8", (TOP_LEVELS,)), 40, "bid prices, best first; 0 where no level"),
    ("bid_size", ("<i8", (TOP_LEVELS,)), 120, "bid sizes, best first; 0 where no level"),
    ("ask_price", ("<i8", (TOP_LEVELS,)), 200, "ask prices, best first; 0 where no level"),
    ("ask_size", ("<i8", (TOP_LEVELS,)), 280, "ask sizes, best first; 0 where no level"),
)
TOP_RECORD_SIZE = 360

BOOK_TOP_DTYPE = fixed_dtype(_FIELDS, TOP_RECORD_SIZE)

BOOK_TOP = EventType(
    type_id=9,
    name="book.top",
    version=1,
    codec=Codec.FIXED,
    doc="The top ten price levels of each side after a source message changed them (or changed "
    "the book's status or update id). Emitted by the `book` processor into `run.<run id>.book`; "
    "the LOBSTER orderbook oracle uses the same layout in `<session>.oracle`.",
    fields=tuple(
        FieldDoc(n, np.dtype(t).name if isinstance(t, str) else f"int64[{TOP_LEVELS}]", d, o)
        for n, t, o, d in _FIELDS
    ),
    dtype=BOOK_TOP_DTYPE,
)

_BAND_FIELDS: tuple[FieldSpec, ...] = (
    _FIELDS[0],
    ("band", "u1", 2, "which ten levels: 1 for levels 11-20, 2 for 21-30, ..."),
    *_FIELDS[2:],
)

BOOK_BAND = EventType(
    type_id=23,
    name="book.band",
    version=1,
    codec=Codec.FIXED,
    doc="Ten more price levels of a venue's own book row, for LOBSTER files deeper than ten "
    "levels: in `<session>.oracle` each row's `book.top` (levels 1-10) is followed by its bands "
    "(levels 11-20, 21-30, ...), all with the row's `offset`. Same layout as `book.top`.",
    fields=tuple(
        FieldDoc(n, np.dtype(t).name if isinstance(t, str) else f"int64[{TOP_LEVELS}]", d, o)
        for n, t, o, d in _BAND_FIELDS
    ),
    dtype=fixed_dtype(_BAND_FIELDS, TOP_RECORD_SIZE),
)

_MID_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    ("two_sided", "u1", 2, "1 when both sides have a level (mid, microprice, spread valid)"),
    ("ts_event", "<i8", 8, "event time of the causing journal record, ns since the epoch (UTC)"),
    ("cause", "<u8", 16, "journal offset of the record behind the book change (causation)"),
    ("spread", "<i8", 24, "best ask - best bid, in price units (0 when not two-sided)"),
    ("mid", "<f8", 32, "(best bid + best ask) / 2, in price units"),
    ("microprice", "<f8", 40, "size-weighted mid: (bid * ask_size + ask * bid_size) / sizes"),
    ("log_return", "<f8", 48, "log(mid / previous two-sided mid); 0 for the first"),
    ("ewm_variance", "<f8", 56, "exponentially weighted mean of log_return**2 (per update)"),
)

BOOK_MID = EventType(
    type_id=10,
    name="book.mid",
    version=1,
    codec=Codec.FIXED,
    doc="Mid, microprice, spread and an exponentially weighted variance of mid returns after "
    "each `book.top`. Emitted by the `mid` processor; floating point, computed in event order, "
    "so identical however the journal is sliced.",
    fields=tuple(FieldDoc(n, np.dtype(t).name, d, o) for n, t, o, d in _MID_FIELDS),
    dtype=fixed_dtype(_MID_FIELDS, 64),
)

BOOK_TYPES: tuple[EventType, ...] = (BOOK_TOP, BOOK_MID, BOOK_BAND)


def new_tops(n: int) -> np.ndarray[Any, np.dtype[Any]]:
    """Zeroed ``book.top`` records with type id and level count filled in."""
    tops = np.zeros(n, dtype=BOOK_TOP_DTYPE)
    tops["type_id"] = BOOK_TOP.type_id
    tops["levels"] = TOP_LEVELS
    return tops
