"""The compiled fast path of the Tardis.dev CSV importer: a block of rows to market records.

:func:`scan` converts plain rows of one file (the documented column order, every value
present, the session's exchange and symbol, time not going backwards, not a repeat of the row
before) straight from bytes into ``MARKET_RECORD`` words, with the values
:class:`engine.app.ingest.tardis.TardisConverter` computes row by row. It stops, having changed
nothing, at the first row it is not sure about, which the converter runs through its exact
Python path; and when the records reach ``chunk`` or the output array is full.

Incremental L2 rows are written with flags 0: which row ends a message (F_LAST) and which
starts a snapshot (F_FIRST) depends on the rows around it, so :func:`finish_l2` sets them for
whichever path converted the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.ingest.fastparse import COMMA, decimal, kernel, line_end, put_record, same
from engine.events.market import F_FIRST, F_LAST

DONE, FULL, SLOW, GROW = 0, 1, 2, 3
"""Why :func:`scan` returned: block used up, chunk full, a row for Python, output too small."""

QUOTES, TRADES, L2, SNAPSHOT = 0, 1, 2, 3
"""File kinds (the order of ``engine.app.ingest.tardis.KINDS``)."""

# state slots shared with the Python converter
S_LAST_RECV, S_COUNT, S_PREV_LEN, S_NEED = 0, 1, 2, 3
STATE_SIZE = 4

INT64_MAX = 2**63 - 1
MAX_US = INT64_MAX // 1000
"""Largest microsecond time whose nanoseconds fit int64."""
_T_TRADE, _T_LEVEL, _T_QUOTE, _T_SNAP = 1, 6, 7, 8
_F_FIRST, _F_LAST = F_FIRST, F_LAST

_BUY = np.frombuffer(b"buy", np.uint8)
_SELL = np.frombuffer(b"sell", np.uint8)
_UNKNOWN = np.frombuffer(b"unknown", np.uint8)
_BID = np.frombuffer(b"bid", np.uint8)
_ASK = np.frombuffer(b"ask", np.uint8)
_TRUE = np.frombuffer(b"true", np.uint8)
_FALSE = np.frombuffer(b"false", np.uint8)


@kernel
def _end(buf: Any, i: int, e: int) -> int:
    """Index of the comma ending the field at ``i`` (``e`` for the last field)."""
    while i < e and buf[i] != COMMA:
        i += 1
    return i


@kernel
def _value(buf: Any, i: int, e: int, scale: int, vals: Any, k: int) -> int:
    """The non-negative decimal field at ``i`` into ``vals[k]``; index after its comma, or -1.

    The line's last field ends at ``e`` (returns ``e + 1``)."""
    f = _end(buf, i, e)
    ok, value, j = decimal(buf, i, f, scale)
    if not ok or j != f or value < 0:
        return -1
    vals[k] = value
    return f + 1


@kernel
def _side(buf: Any, i: int, e: int, plus: Any, minus: Any) -> tuple[int, int]:
    """(+1 / -1 / 0 for ``unknown``, index after the comma) of a side word, or (0, -1)."""
    f = _end(buf, i, e)
    if same(buf, i, f, plus):
        return 1, f + 1
    if same(buf, i, f, minus):
        return -1, f + 1
    if same(buf, i, f, _UNKNOWN):
        return 0, f + 1
    return 0, -1


@kernel
def _row(
    buf: Any, s: int, e: int, kind: int, exchange: Any, symbol: Any, price_scale: int,
    size_scale: int, levels: int, st: Any, out: Any, vals: Any,
) -> int:  # fmt: skip
    """Convert one row: records written, -1 for the Python path, -2 when ``out`` is too small."""
    f = _end(buf, s, e)
    if not same(buf, s, f, exchange):
        return -1
    i = f + 1
    f = _end(buf, i, e)
    if not same(buf, i, f, symbol):
        return -1
    i = _value(buf, f + 1, e, 0, vals, 0)
    if i < 0:
        return -1
    i = _value(buf, i, e, 0, vals, 1)
    if i < 0 or vals[0] > MAX_US or vals[1] > MAX_US:
        return -1
    ts_event, ts_recv = vals[0] * 1000, vals[1] * 1000
    if ts_recv < st[S_LAST_RECV]:
        return -1
    n = st[S_COUNT]
    if n + (2 * levels if kind == SNAPSHOT else 1) > len(out):
        st[S_NEED] = 2 * levels if kind == SNAPSHOT else 1
        return -2
    if kind == QUOTES:  # ask_amount, ask_price, bid_price, bid_amount
        for k in range(4):
            i = _value(buf, i, e, size_scale if k == 0 or k == 3 else price_scale, vals, k)
            if i < 0:
                return -1
        put_record(out, n, _T_QUOTE, 0, _F_LAST, 0, ts_event, ts_recv,
             vals[2], vals[3], 0, vals[1], vals[0])  # fmt: skip
        written = 1
    elif kind == TRADES:  # id, side, price, amount
        i = _value(buf, i, e, 0, vals, 0)
        if i < 0:
            return -1
        side, i = _side(buf, i, e, _BUY, _SELL)
        if i < 0:
            return -1
        i = _value(buf, i, e, price_scale, vals, 1)
        if i < 0:
            return -1
        i = _value(buf, i, e, size_scale, vals, 2)
        if i < 0:
            return -1
        put_record(out, n, _T_TRADE, side, _F_LAST, 0, ts_event, ts_recv, vals[1], vals[2],
             vals[0], 0, 0)  # fmt: skip
        written = 1
    elif kind == L2:  # is_snapshot, side, price, amount
        f = _end(buf, i, e)
        if same(buf, i, f, _TRUE):
            type_id = _T_SNAP
        elif same(buf, i, f, _FALSE):
            type_id = _T_LEVEL
        else:
            return -1
        side, i = _side(buf, f + 1, e, _BID, _ASK)
        if i < 0 or side == 0:
            return -1
        i = _value(buf, i, e, price_scale, vals, 0)
        if i < 0:
            return -1
        i = _value(buf, i, e, size_scale, vals, 1)
        if i < 0:
            return -1
        put_record(out, n, type_id, side, 0, 0, ts_event, ts_recv, vals[0], vals[1], 0, 0, 0)
        written = 1
    else:  # book_snapshot_N: asks[k].price, asks[k].amount, bids[k].price, bids[k].amount
        for k in range(4 * levels):
            i = _value(buf, i, e, price_scale if k % 2 == 0 else size_scale, vals, k)
            if i < 0:
                return -1
        written = 2 * levels
        for k in range(written):
            side, level = (1, k) if k < levels else (-1, k - levels)
            base = 4 * level + (2 if side > 0 else 0)
            flags = (_F_FIRST if k == 0 else 0) | (_F_LAST if k == written - 1 else 0)
            put_record(out, n + k, _T_SNAP, side, flags, level, ts_event, ts_recv,
                 vals[base], vals[base + 1], 0, 0, 0)  # fmt: skip
    if i != e + 1:  # a field too many
        return -1
    st[S_LAST_RECV] = ts_recv
    return written


@kernel
def _repeat(buf: Any, s: int, e: int, st: Any, prev: Any) -> bool:
    """Whether the line ``buf[s:e]`` repeats the previous one (kept in ``prev``)."""
    n = e - s
    if st[S_PREV_LEN] != n:
        return False
    for k in range(n):  # noqa: SIM110 (a generator does not compile in numba)
        if buf[s + k] != prev[k]:
            return False
    return True


@kernel
def _remember(buf: Any, s: int, e: int, st: Any, prev: Any) -> None:
    n = e - s
    if n > len(prev):
        st[S_PREV_LEN] = -1
        return
    for k in range(n):
        prev[k] = buf[s + k]
    st[S_PREV_LEN] = n


@kernel
def scan(
    buf: Any, pos: int, end: int, kind: int, exchange: Any, symbol: Any, price_scale: int,
    size_scale: int, levels: int, chunk: int, st: Any, out: Any, prev: Any, vals: Any,
) -> tuple[int, int, int]:  # fmt: skip
    """Convert rows from ``pos`` while they are plain: (status, position, rows done).

    ``st`` holds the converter state (``S_*`` slots), ``prev`` the previous row's bytes;
    records go to ``out`` (int64 words, ``st[S_COUNT]`` used). On SLOW the row at the returned
    position is untouched; on GROW ``st[S_NEED]`` records must fit.
    """
    rows = 0
    while pos < end:
        stop, nxt = line_end(buf, pos, end)
        if _repeat(buf, pos, stop, st, prev):
            return SLOW, pos, rows
        r = _row(buf, pos, stop, kind, exchange, symbol, price_scale, size_scale, levels, st,
                 out, vals)  # fmt: skip
        if r == -1:
            return SLOW, pos, rows
        if r == -2:
            return GROW, pos, rows
        _remember(buf, pos, stop, st, prev)
        st[S_COUNT] += r
        pos = nxt
        rows += 1
        if st[S_COUNT] >= chunk:
            return FULL, pos, rows
    return DONE, pos, rows


@kernel
def finish_l2(words: Any, n: int, carry: Any, final: bool) -> None:
    """Set F_FIRST, F_LAST and the level index of incremental L2 records ``words[:n - 1]``
    (``words[:n]`` when ``final``: the input ends after them).

    A message is a run of rows with the same ``local_timestamp`` and the same snapshot-ness;
    its last record gets F_LAST. A snapshot (``is_snapshot`` rows after other rows) starts with
    F_FIRST, and its records count their level within each side in ``aux``. Unless ``final``,
    the last record is left for the next call, which knows what follows it. ``carry`` holds
    (type of the record before ``words[0]``, bid count, ask count) across calls.
    """
    for i in range(n if final else n - 1):
        w = words[i, 0]
        t = w & 0xFFFF
        side = (w >> 16) & 0xFF
        flags = 0
        aux = 0
        if t == _T_SNAP:
            if carry[0] != _T_SNAP:
                flags |= _F_FIRST
                carry[1] = 0
                carry[2] = 0
            if side == 1:
                aux = carry[1]
                carry[1] += 1
            else:
                aux = carry[2]
                carry[2] += 1
        if i + 1 == n or words[i + 1, 2] != words[i, 2] or words[i + 1, 0] & 0xFFFF != t:
            flags |= _F_LAST
        words[i, 0] = t | (side << 16) | (flags << 24) | (aux << 32)
        carry[0] = t
