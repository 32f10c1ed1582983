"""PostgreSQL's binary ``COPY`` format, built for a whole :class:`~engine.app.store.frame.Frame`
with numpy.

The format (PostgreSQL docs, "COPY", "Binary Format"): a header (``PGCOPY\\n\\377\\r\\n\\0``,
a 32-bit flags word and a 32-bit header-extension length), then per row a big-endian 16-bit
field count and per field a 32-bit byte length (``-1`` for NULL, then no bytes) followed by the
value in the type's binary form (``int8``/``int4``/``float8`` big-endian, ``bool`` one byte,
text as its UTF-8 bytes), and a 16-bit ``-1`` trailer.

Every row of a frame has the same layout except where a field is NULL, so the rows are first
laid out as one numpy structured array of fixed width (count, then length and value of each
column) and the value bytes of NULL fields are then cut out with one boolean mask. Text columns
must be constants (the topic, the run id, the session): their bytes are the same in every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.app.store.frame import COLUMNS, Frame

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""Signature, flags (no OIDs) and an empty header extension."""
TRAILER = b"\xff\xff"
"""The field count -1 that ends the data."""

_NUMBERS = {"int8": ">i8", "int4": ">i4", "float8": ">f8", "bool": "?"}
"""Wire layout of each fixed-width PostgreSQL type the store uses."""


@dataclass(frozen=True)
class Encoded:
    """The ``n`` rows of a frame of ``table`` already in binary COPY form (no header)."""

    table: str
    n: int
    payload: bytes

    def __len__(self) -> int:
        return self.n


def encoded(part: Any, types: list[str]) -> Any:
    """``part`` as :class:`Encoded` if it is a frame; anything else as it is."""
    if isinstance(part, Frame):
        return Encoded(part.table, part.n, encode(part, types))
    return part


def encode(frame: Frame, types: list[str]) -> bytes:
    """The rows of ``frame`` in binary COPY form (no header or trailer); ``types`` are the
    PostgreSQL types of the table's columns, in column order."""
    names = COLUMNS[frame.table]
    assert len(types) == len(names), f"{frame.table}: {len(types)} types, {len(names)} columns"
    fields: list[tuple[str, str]] = [("count", ">i2")]
    fills: list[tuple[str, Any]] = [("count", len(names))]
    cuts: list[tuple[str, np.ndarray[Any, Any]]] = []
    for j, (name, kind) in enumerate(zip(names, types, strict=True)):
        value = frame.columns[name]
        length, data = f"l{j}", f"v{j}"
        fields.append((length, ">i4"))
        if not isinstance(value, np.ndarray):
            raw = _constant(frame.table, name, kind, value)
            fills.append((length, -1 if raw is None else len(raw)))
            if raw:
                fields.append((data, f"S{len(raw)}"))
                fills.append((data, raw))
            continue
        wire = _NUMBERS.get(kind)
        assert wire is not None, f"{frame.table}.{name}: {kind} must be a constant"
        fields.append((data, wire))
        fills.append((length, np.dtype(wire).itemsize))
        fills.append((data, _numbers(value, wire)))
        null = np.isnan(value) if value.dtype.kind == "f" else frame.nulls.get(name)
        if null is not None and null.any():
            cuts.append((data, null))
    layout = np.dtype(fields)
    out = np.empty(frame.n, dtype=layout)
    for name, fill in fills:
        out[name] = fill
    if not cuts:
        whole: bytes = out.tobytes()
        return whole
    for data, null in cuts:
        out["l" + data[1:]][null] = -1
    byte = out.view(np.uint8).reshape(frame.n, layout.itemsize)
    keep = np.ones(byte.shape, dtype=bool)
    for data, null in cuts:
        start = layout.fields[data][1]  # type: ignore[index]
        keep[null, start : start + layout[data].itemsize] = False
    payload: bytes = byte[keep].tobytes()
    return payload


def _numbers(value: np.ndarray[Any, Any], wire: str) -> np.ndarray[Any, Any]:
    if wire == "?":
        flags: np.ndarray[Any, Any] = value != 0
        return flags
    if wire in (">i8", ">i4") and value.dtype.kind == "u":
        # Unsigned 64-bit ids are stored as their signed 64-bit pattern (docs/analysts.md).
        value = value.astype(np.int64)
    return value


def _constant(table: str, name: str, kind: str, value: object) -> bytes | None:
    if value is None:
        return None
    if kind == "text":
        assert isinstance(value, str), f"{table}.{name}: text, got {value!r}"
        return value.encode()
    wire = _NUMBERS.get(kind)
    assert wire is not None, f"{table}.{name}: no binary form for {kind}"
    return np.array([value], dtype=wire).tobytes()
