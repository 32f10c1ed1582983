"""Derived feature events: one fixed-width vector of every feature at a moment of event time.

``features.vector`` is high volume (up to one per journal record), so it is a fixed-width
little-endian record like the market data: a batch read from a run's ``features`` topic is a
zero-copy numpy array whose ``values`` column is an ``(n, 65)`` float64 matrix, ready for
training. What each value means is the feature schema (``streams.features.schema``, documented
in ``docs/features.md``) of the version in the record's ``schema`` field.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.events.types import Codec, EventType, FieldDoc, FieldSpec, fixed_dtype

N_VALUES = 65
"""Features per vector (the schema's length)."""

# flag bits of features.vector
F_WARMING_UP = 0x01
"""Some windows or decays have not yet seen their full warm-up (their features are NaN)."""
F_NO_L1 = 0x02
"""The best bid/ask is not two-sided: spread, microprice and L1 queue features are NaN."""
F_NO_BOOK = 0x04
"""No usable ``book.top`` (none yet, not synced, or stale): depth features are NaN."""
F_NO_TRADES = 0x08
"""No trade seen yet in the session: trade-based features are NaN."""
F_CLOSED = 0x10
"""Outside the venue's trading hours according to its calendar."""

FEATURE_FLAGS: tuple[tuple[int, str], ...] = (
    (F_WARMING_UP, "warming_up"),
    (F_NO_L1, "no_l1"),
    (F_NO_BOOK, "no_book"),
    (F_NO_TRADES, "no_trades"),
    (F_CLOSED, "closed"),
)
"""(bit, name) of every flag, for readable output."""

_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    (
        "flags",
        "<u2",
        2,
        "bit set: 0x01 warming up, 0x02 L1 not two-sided, 0x04 no usable book, 0x08 no "
        "trade yet, 0x10 outside trading hours",
    ),
    ("schema", "<u2", 4, "feature schema version: which definitions the values follow"),
    ("ts_event", "<i8", 8, "the stage's event-time clock (largest ts_event seen), ns (UTC)"),
    ("cause", "<u8", 16, "journal offset of the event after which the vector was computed"),
    (
        "values",
        ("<f8", (N_VALUES,)),
        24,
        "the features in schema order (see docs/features.md); NaN where undefined",
    ),
)
VECTOR_RECORD_SIZE = 24 + 8 * N_VALUES

FEATURES_VECTOR = EventType(
    type_id=11,
    name="features.vector",
    version=1,
    codec=Codec.FIXED,
    doc="Every feature of the `features` processor after one journal event, at the configured "
    "cadence (every trade, every book change, or every N ms of event time). Emitted into "
    "`run.<run id>.features`; value i is feature i of docs/features.md for the record's schema "
    "version. NaN (one canonical quiet NaN) marks a feature that is undefined or warming up.",
    fields=tuple(
        FieldDoc(n, np.dtype(t).name if isinstance(t, str) else f"float64[{N_VALUES}]", d, o)
        for n, t, o, d in _FIELDS
    ),
    dtype=fixed_dtype(_FIELDS, VECTOR_RECORD_SIZE),
)

FEATURE_TYPES: tuple[EventType, ...] = (FEATURES_VECTOR,)


def new_vectors(n: int, schema: int) -> np.ndarray[Any, np.dtype[Any]]:
    """Zeroed ``features.vector`` records with type id and feature schema version filled in."""
    assert FEATURES_VECTOR.dtype is not None
    vectors = np.zeros(n, dtype=FEATURES_VECTOR.dtype)
    vectors["type_id"] = FEATURES_VECTOR.type_id
    vectors["schema"] = schema
    return vectors
