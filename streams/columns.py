"""The journal records of one slice as the contiguous columns that compiled loops read.

A slice is either market records or low-rate events. Compiled loops want one signature for
both, so a low-rate slice becomes its ``clock.ticked`` events as records of type 0 (they only
move the event-time clock); every other low-rate event is left out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from engine.events.control import ClockTicked
from engine.runtime.processor import Slice


class JournalColumns(NamedTuple):
    """Contiguous columns of a slice's journal records, one row per record."""

    offsets: np.ndarray[Any, Any]
    type_id: np.ndarray[Any, Any]
    side: np.ndarray[Any, Any]
    price: np.ndarray[Any, Any]
    size: np.ndarray[Any, Any]
    price2: np.ndarray[Any, Any]
    size2: np.ndarray[Any, Any]
    ts_event: np.ndarray[Any, Any]


def journal_columns(piece: Slice) -> JournalColumns:
    """The slice's market records, or its clock ticks as type-0 records (see the module).

    Built once per slice and shared by the stages that ask (``Slice.derived``); callers only
    read them.
    """
    columns: JournalColumns | None = piece.derived.get("journal_columns")
    if columns is None:
        columns = piece.derived["journal_columns"] = _columns(piece)
    return columns


def _columns(piece: Slice) -> JournalColumns:
    if piece.market is not None:
        m = piece.market
        if len(m) != len(piece):  # compiled loops trust these lengths (no bounds checks)
            raise ValueError(f"slice {piece.start}..{piece.stop} holds {len(m)} records")
        return JournalColumns(
            np.arange(piece.start, piece.stop, dtype=np.int64),
            *(np.ascontiguousarray(m[f]) for f in JournalColumns._fields[1:]),
        )
    at = [
        (piece.start + i, e.ts_event)
        for i, e in enumerate(piece.control)
        if isinstance(e, ClockTicked)
    ]
    n = len(at)
    zeros = np.zeros(n, np.int64)
    return JournalColumns(
        np.array([o for o, _ in at], np.int64).reshape(n),
        np.zeros(n, np.uint16),
        np.zeros(n, np.int8),
        zeros,
        zeros,
        zeros,
        zeros,
        np.array([t for _, t in at], np.int64).reshape(n),
    )
