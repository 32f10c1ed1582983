"""The compiled fast path of the LOBSTER importer: message/orderbook row pairs to records.

:func:`scan` converts pairs of rows straight from the bytes of the two CSV files into a
``MARKET_RECORD`` (the message) and a ``book.top`` oracle row (the orderbook), with the same
values as :class:`engine.app.ingest.lobster.LobsterConverter` computes pair by pair (or message
rows alone, with no oracle rows, when there is no orderbook file). It stops,
without having changed anything, at the first pair it is not sure about: anything that would be
quarantined, a type 7 (trading status) message, the first pair (which builds the snapshot), or
a value outside the plain form (see :mod:`engine.app.ingest.fastparse`). The converter runs that
pair through its exact Python path and resumes. It also stops when the records reach ``chunk``
(where the Python path flushes), when either block runs out of whole lines, and when an output
array is full.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.ingest.fastparse import COMMA, decimal, kernel, next_line
from engine.app.ingest.lobster_rows import EMPTY_ASK, EMPTY_BID
from engine.events.book import BOOK_TOP, BOOK_TOP_DTYPE, TOP_LEVELS
from engine.events.market import F_HIDDEN, F_LAST

DONE, FULL, SLOW, GROW = 0, 1, 2, 3
"""Why :func:`scan` returned: a block used up, chunk full, a pair for Python, output full."""

# state slots shared with the Python converter
S_LAST_TS, S_ORDINAL, S_RECORDS, S_TOPS = 0, 1, 2, 3
STATE_SIZE = 4

INT64_MAX = 2**63 - 1
_F_LAST, _F_HIDDEN = F_LAST, F_HIDDEN
_TOP_LEVELS = TOP_LEVELS


def _offset(field: str) -> int:
    fields = BOOK_TOP_DTYPE.fields
    assert fields is not None
    return int(fields[field][1])


def _word(field: str) -> int:
    return _offset(field) // 8


# book.top as int64 words: word 0 packs type id (u2), status (u1, 0), levels (u1) and padding
_TOP_WORD0 = BOOK_TOP.type_id | (TOP_LEVELS << 24)
_BID_PRICE, _BID_SIZE = _word("bid_price"), _word("bid_size")
_ASK_PRICE, _ASK_SIZE = _word("ask_price"), _word("ask_size")
assert [_offset(f) for f in ("type_id", "status", "levels")] == [0, 2, 3]
assert [_word(f) for f in ("ts_event", "ts_recv", "offset", "update_id")] == [1, 2, 3, 4]


@kernel
def _columns(buf: Any, i: int, e: int, count: int, scale0: int, values: Any) -> int:
    """``count`` comma-separated decimals of a line into ``values``; next line start or -1.

    The first column has scale ``scale0``, the others 0 (integers). A column must be exactly
    a decimal, and the line must end after the last one (see :func:`next_line`).
    """
    last = count - 1
    for k in range(count):
        ok, value, j = decimal(buf, i, e, scale0 if k == 0 else 0)
        if not ok:
            return -1
        values[k] = value
        if k < last:
            if j >= e or buf[j] != COMMA:
                return -1
            i = j + 1
        else:
            return next_line(buf, j, e)
    return -1


@kernel
def _message(buf: Any, pos: int, e: int, midnight: int, msg: Any) -> int:
    """The message row at ``pos`` into ``msg`` if valid: next line start, or -1.

    ``msg`` becomes (ts, type, order id, size, price, direction).
    """
    nxt = _columns(buf, pos, e, 6, 9, msg)
    if nxt < 0:
        return -1
    seconds, kind, order_id, size, price, direction = msg[0], msg[1], msg[2], msg[3], msg[4], msg[5]
    if kind < 1 or kind > 7 or size < 0 or seconds < 0 or order_id < 0:
        return -1
    if direction != 1 and direction != -1:
        return -1
    if kind != 7 and price < 0:
        return -1
    if seconds > INT64_MAX - midnight:
        return -1
    msg[0] = midnight + seconds
    return nxt


@kernel
def _book(buf: Any, pos: int, e: int, levels: int, top: Any, row: Any) -> int:
    """The orderbook row at ``pos`` into the level words of ``top`` if valid: next line or -1.

    ``row`` is scratch for the row's ``4 * levels`` values.
    """
    nxt = _columns(buf, pos, e, 4 * levels, 0, row)
    if nxt < 0:
        return -1
    for level in range(levels):
        if row[4 * level + 1] < 0 or row[4 * level + 3] < 0:
            return -1
    for level in range(_TOP_LEVELS):
        ask_price, ask_size, bid_price, bid_size = 0, 0, 0, 0
        if level < levels:
            ask_price, ask_size = row[4 * level], row[4 * level + 1]
            bid_price, bid_size = row[4 * level + 2], row[4 * level + 3]
            if ask_price == EMPTY_ASK:
                ask_price, ask_size = 0, 0
            if bid_price == EMPTY_BID:
                bid_price, bid_size = 0, 0
        top[_ASK_PRICE + level] = ask_price
        top[_ASK_SIZE + level] = ask_size
        top[_BID_PRICE + level] = bid_price
        top[_BID_SIZE + level] = bid_size
    return nxt


@kernel
def scan(
    mbuf: Any, mpos: int, mend: int, bbuf: Any, bpos: int, bend: int, levels: int,
    midnight: int, chunk: int, st: Any, out: Any, tops: Any, scratch: Any,
) -> tuple[int, int, int, int]:  # fmt: skip
    """Convert pairs while they are plain: (status, message position, book position, pairs).

    ``st`` holds the converter state (``S_*`` slots), updated per pair; records go to ``out``
    and oracle rows to ``tops`` (int64 words; ``st[S_RECORDS]``, ``st[S_TOPS]`` used). On SLOW
    the pair at the returned positions is untouched. ``scratch`` is :func:`scratch`.
    ``levels`` 0 means there is no orderbook file: message rows alone, no oracle rows.
    """
    msg = scratch[:6]
    row = scratch[6:]
    pairs = 0
    paired = levels > 0
    while mpos < mend and (bpos < bend or not paired):
        if paired and st[S_ORDINAL] < 0:  # the first pair builds the snapshot: Python does it
            return SLOW, mpos, bpos, pairs
        n, t = st[S_RECORDS], st[S_TOPS]
        if n >= len(out) or (paired and t >= len(tops)):
            return GROW, mpos, bpos, pairs
        mnext = _message(mbuf, mpos, mend, midnight, msg)
        if mnext < 0:
            return SLOW, mpos, bpos, pairs
        ts, kind = msg[0], msg[1]
        if kind == 7 or ts < st[S_LAST_TS]:
            return SLOW, mpos, bpos, pairs
        bnext = bpos
        if paired:
            bnext = _book(bbuf, bpos, bend, levels, tops[t], row)
            if bnext < 0:
                return SLOW, mpos, bpos, pairs
        order_id, size, price, direction = msg[2], msg[3], msg[4], msg[5]
        if kind <= 4:  # added, cancelled, deleted, executed: catalogue ids 2..5
            type_id, side, flags = kind + 1, direction, _F_LAST
        elif kind == 5:  # hidden execution: a trade by the aggressor, the opposite side
            type_id, side, flags, order_id = 1, -direction, _F_LAST | _F_HIDDEN, 0
        else:  # 6, cross: a trade without an aggressor
            type_id, side, flags, order_id = 1, 0, _F_LAST, 0
        rec = out[n]
        rec[0] = type_id | ((side & 0xFF) << 16) | (flags << 24)
        rec[1] = ts
        rec[2] = ts
        rec[3] = price
        rec[4] = size
        rec[5] = order_id
        rec[6] = 0
        rec[7] = 0
        ordinal = st[S_ORDINAL] + 1
        if paired:
            top = tops[t]
            top[0] = _TOP_WORD0
            top[1] = ts
            top[2] = ts
            top[3] = ordinal
            top[4] = 0
            st[S_TOPS] = t + 1
        st[S_ORDINAL] = ordinal
        st[S_LAST_TS] = ts
        st[S_RECORDS] = n + 1
        mpos, bpos = mnext, bnext
        pairs += 1
        if n + 1 >= chunk:
            return FULL, mpos, bpos, pairs
    return DONE, mpos, bpos, pairs


def scratch() -> np.ndarray[Any, np.dtype[np.int64]]:
    """Scratch for :func:`scan`: one parsed message row and one orderbook row."""
    return np.zeros(6 + 4 * _TOP_LEVELS, dtype=np.int64)
