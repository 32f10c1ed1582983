"""Building market records a row at a time, then as one numpy array per chunk.

Creating a numpy array per input line would cost more than parsing the line. Converters append
plain tuples in the generic ``MARKET_RECORD`` field order instead and turn a chunk of them into one
array at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.ingest.decimal import DecimalError
from engine.events.market import MARKET_RECORD

Row = tuple[int, int, int, int, int, int, int, int, int, int, int]
"""(type_id, side, flags, aux, ts_event, ts_recv, price, size, id, price2, size2)."""

INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


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
    return -INT64_MAX - 1 <= value <= INT64_MAX


def shown(value: int) -> str:
    """``value`` for a message: its digits, or its magnitude when it is huge.

    ``str`` of an integer of thousands of digits raises (Python's conversion limit), and such
    a number would drown the message anyway.
    """
    if -(10**24) < value < 10**24:
        return str(value)
    return f"{'-' if value < 0 else ''}~10**{int(abs(value).bit_length() * 0.30103)}"


def check_range(what: str, value: int, low: int, high: int, unit: str = "") -> None:
    """Raise :class:`DecimalError` ``out_of_range`` unless ``low <= value <= high``.

    Importers call it for every integer they store, with the range of the record slot (or the
    venue's own range) it goes to, so a damaged value is quarantined with its field named
    instead of failing when the chunk of records is built.
    """
    if not low <= value <= high:
        raise DecimalError(
            "out_of_range", f"{what}: {shown(value)}{unit} is outside {low}..{high}{unit}"
        )


class FixedArray:
    """Fixed-width records of one chunk in a preallocated array that compiled code fills in place.

    ``n`` records are valid; ``words`` is the same memory as 64-bit words, one row per record,
    which is what the numba parsers write. ``take`` hands the filled part out and starts a new
    array, so what was handed out is never overwritten.
    """

    def __init__(self, dtype: np.dtype[Any], capacity: int) -> None:
        self.dtype = dtype
        self.capacity = capacity
        self.array = self._new(capacity)
        self.n = 0

    def _new(self, capacity: int) -> np.ndarray[Any, Any]:
        # Not zeroed: every record below ``n`` is written whole before it counts.
        return np.empty(capacity, dtype=self.dtype)

    @property
    def words(self) -> np.ndarray[Any, Any]:
        """The array as ``(capacity, itemsize // 8)`` int64 words."""
        return self.array.view(np.int64).reshape(len(self.array), self.dtype.itemsize // 8)

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more records."""
        if self.n + extra > len(self.array):
            bigger = self._new(max(2 * len(self.array), self.n + extra))
            _raw(bigger)[: self.n] = _raw(self.array)[: self.n]
            self.array = bigger

    def extend(self, records: np.ndarray[Any, Any]) -> None:
        """Append records after the ``n`` held."""
        self.reserve(len(records))
        _raw(self.array)[self.n : self.n + len(records)] = _raw(records)
        self.n += len(records)

    def take_array(self) -> np.ndarray[Any, Any]:
        """The ``n`` records held (empties the buffer)."""
        out = self.array[: self.n]
        self.array = self._new(self.capacity)
        self.n = 0
        return out


class RecordArray(FixedArray):
    """A :class:`RecordBuffer` whose records live in a :class:`FixedArray`.

    Python code appends row tuples to ``rows`` exactly as with :class:`RecordBuffer`; compiled
    code writes into the array. ``settle`` moves pending rows into the array behind what is
    there, which keeps arrival order as long as it is called before the compiled code runs.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(MARKET_RECORD, capacity)
        self.rows: list[Row] = []

    def __len__(self) -> int:
        return self.n + len(self.rows)

    def settle(self) -> bool:
        """Move ``rows`` into the array; False (rows kept) if a value does not fit its field.

        The failure is left for :meth:`take`, which raises it at the point the row-tuple
        buffer always has, so a bad value surfaces exactly as it did before there was an array.
        """
        if self.rows:
            try:
                rows = np.array(self.rows, dtype=MARKET_RECORD)
            except Exception:  # whatever numpy raises, take() raises again
                return False
            self.extend(rows)
            self.rows = []
        return True

    def take(self) -> np.ndarray[Any, Any]:
        """All buffered records as one array (empties the buffer)."""
        if self.rows:
            self.extend(np.array(self.rows, dtype=MARKET_RECORD))
            self.rows = []
        return self.take_array() if self.n else _EMPTY


def _raw(records: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    # Copying structured records field by field skips padding bytes (book.top has some),
    # which would then hold whatever the memory held: copy them as opaque bytes instead.
    return records.view(np.dtype((np.void, records.dtype.itemsize)))
