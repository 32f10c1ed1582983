"""Building market records a row at a time, then as one numpy array per chunk.

Creating a numpy array per input line would cost more than parsing the line. Converters append
plain tuples in the generic ``MARKET_RECORD`` field order instead and turn a chunk of them into one
array at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.events.market import MARKET_RECORD

Row = tuple[int, int, int, int, int, int, int, int, int, int, int]
"""(type_id, side, flags, aux, ts_event, ts_recv, price, size, id, price2, size2)."""

_INT64_MAX = (1 << 63) - 1


class RecordBuffer:
    """Rows of market records in arrival order, taken out as one ``MARKET_RECORD`` array."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def __len__(self) -> int:
        return len(self.rows)

    def take(self) -> np.ndarray[Any, Any]:
        """All buffered rows as records (empties the buffer)."""
        records = np.array(self.rows, dtype=MARKET_RECORD) if self.rows else _EMPTY
        self.rows = []
        return records


_EMPTY = np.zeros(0, dtype=MARKET_RECORD)


def fits_int64(value: int) -> bool:
    """Whether a scaled value can be stored in a signed 64-bit slot."""
    return -_INT64_MAX - 1 <= value <= _INT64_MAX
