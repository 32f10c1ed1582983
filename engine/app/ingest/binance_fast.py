"""The compiled fast path of the Binance importer: a block of lines to market records.

:func:`scan` converts the plain, common lines of a recording (``<stamp> {"stream": ...,
"data": {...}}`` with a depthUpdate, trade or bookTicker that converts without any problem)
straight from bytes into ``MARKET_RECORD`` words, with the same values, flags and sequencing
decisions as :class:`engine.app.ingest.binance.BinanceConverter` makes line by line. It stops,
without
having changed anything, at the first line it is not sure about: a REST snapshot, anything that
would be quarantined, a sequence gap, a snapshot straddle decision, or JSON outside the plain
form (see :mod:`engine.app.ingest.fastparse`). The converter runs that one line through its exact
Python path and resumes. It also stops when the records reach ``chunk``, where the Python path
cuts an array, and when the output array is too small for a line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.ingest.fastparse import (
    COLON,
    COMMA,
    LBRACE,
    LBRACKET,
    RBRACE,
    RBRACKET,
    contains,
    json_uint,
    kernel,
    line_end,
    literal,
    put_record,
    same,
    skip_scalar,
    skip_ws,
    string_end,
    unsigned,
)
from engine.events.market import F_FIRST, F_GAP, F_LAST, MARKET_RECORD

DONE, FULL, SLOW, GROW = 0, 1, 2, 3
"""Why :func:`scan` returned: block used up, chunk full, a line for Python, output too small."""

# state slots shared with the Python converter (see BinanceConverter._state_in / _state_out)
S_LAST_TS, S_HAS_PREV, S_PREV_U, S_CHAIN_START = 0, 1, 2, 3
S_HAS_PENDING, S_PENDING, S_PENDING_GAP, S_COUNT = 4, 5, 6, 7
S_PREV_FIRST, S_LAST_TRADE, S_NEED = 8, 9, 10
STATE_SIZE = 11

INT64_MAX = 2**63 - 1
MAX_E_MS = INT64_MAX // 1_000_000
"""Largest event time in ms whose ns value fits int64."""

_T_TRADE, _T_LEVEL, _T_QUOTE = 1, 6, 7  # as in binance.py
_F_LAST, _F_FIRST, _F_GAP = F_LAST, F_FIRST, F_GAP
_MS = 1_000_000


def _offset(field: str) -> int:
    fields = MARKET_RECORD.fields
    assert fields is not None
    return int(fields[field][1])


# MARKET_RECORD as eight int64 words: word 0 packs type_id (u2), side (i1), flags (u1) and aux
# (u4); then ts_event, ts_recv, price, size, id, price2, size2
assert [_offset(f) for f in ("type_id", "side", "flags", "aux")] == [0, 2, 3, 4]
assert [_offset(f) // 8 for f in ("ts_event", "ts_recv", "price", "size")] == [1, 2, 3, 4]
assert [_offset(f) // 8 for f in ("id", "price2", "size2")] == [5, 6, 7]

_STREAM = np.frombuffer(b"stream", np.uint8)
_DATA = np.frombuffer(b"data", np.uint8)
_AT_DEPTH = np.frombuffer(b"@depth", np.uint8)
_AT_TRADE = np.frombuffer(b"@trade", np.uint8)
_AT_TICKER = np.frombuffer(b"@bookTicker", np.uint8)
_DEPTH_UPDATE = np.frombuffer(b"depthUpdate", np.uint8)
_TRADE = np.frombuffer(b"trade", np.uint8)
_BOOK_TICKER = np.frombuffer(b"bookTicker", np.uint8)
_TRUE = np.frombuffer(b"true", np.uint8)
_FALSE = np.frombuffer(b"false", np.uint8)

# data fields: index into the per-line field table
_E_NAME, _E_TIME, _SYM, _FIRST_U, _LAST_U, _BIDS, _ASKS, _PREV_U = 0, 1, 2, 3, 4, 5, 6, 7
_T_TIME, _TRADE_ID, _PRICE, _QTY, _MAKER, _BID_QTY, _ASK_QTY = 8, 9, 10, 11, 12, 13, 14
FIELDS = 15
# field table columns: type (0 absent, 1 string, 2 int, 3 bool, 4 levels), a, b
# string: a, b = start, end of its bytes; int/bool: a = value; levels: a, b = first row, count
_ABSENT, _STR, _INT, _BOOL, _LEVELS = 0, 1, 2, 3, 4


@kernel
def _field(buf: Any, s: int, e: int) -> int:
    """Index of the data field named ``buf[s:e]``, or -1 for a field the importer ignores."""
    n = e - s
    if n == 1:
        c = buf[s]
        if c == 101:  # e
            return _E_NAME
        if c == 69:  # E
            return _E_TIME
        if c == 115:  # s
            return _SYM
        if c == 85:  # U
            return _FIRST_U
        if c == 117:  # u
            return _LAST_U
        if c == 98:  # b
            return _BIDS
        if c == 97:  # a
            return _ASKS
        if c == 84:  # T
            return _T_TIME
        if c == 116:  # t
            return _TRADE_ID
        if c == 112:  # p
            return _PRICE
        if c == 113:  # q
            return _QTY
        if c == 109:  # m
            return _MAKER
        if c == 66:  # B
            return _BID_QTY
        if c == 65:  # A
            return _ASK_QTY
    elif n == 2 and buf[s] == 112 and buf[s + 1] == 117:  # pu
        return _PREV_U
    return -1


@kernel
def _quoted(buf: Any, i: int, e: int, scale: int) -> tuple[int, int]:
    """A non-negative decimal string at ``i``: (value, next non-blank index) or (-1, e)."""
    j = string_end(buf, i, e)
    if j < 0:
        return -1, e
    value = unsigned(buf, i + 1, j - 1, scale)
    return value, (skip_ws(buf, j, e) if value >= 0 else e)


@kernel
def _levels(
    buf: Any, i: int, e: int, lv: Any, first: int, price_scale: int, size_scale: int
) -> tuple[int, int]:
    """``[[price, qty], ...]`` at ``i`` into ``lv[first:]``: (count, index after) or (-1, -1)."""
    i = skip_ws(buf, i + 1, e)
    n = 0
    if i < e and buf[i] == RBRACKET:
        return 0, i + 1
    while True:
        if i >= e or buf[i] != LBRACKET:
            return -1, -1
        price, i = _quoted(buf, skip_ws(buf, i + 1, e), e, price_scale)
        if price < 0 or i >= e or buf[i] != COMMA:
            return -1, -1
        qty, i = _quoted(buf, skip_ws(buf, i + 1, e), e, size_scale)
        if qty < 0 or i >= e or buf[i] != RBRACKET:
            return -1, -1
        if first + n >= len(lv):
            return -1, -1
        lv[first + n, 0] = price
        lv[first + n, 1] = qty
        n += 1
        i = skip_ws(buf, i + 1, e)
        if i < e and buf[i] == COMMA:
            i = skip_ws(buf, i + 1, e)
            continue
        if i < e and buf[i] == RBRACKET:
            return n, i + 1
        return -1, -1


@kernel
def _data(buf: Any, i: int, e: int, fields: Any, lv: Any, price_scale: int, size_scale: int) -> int:
    """The data object at ``i`` into ``fields``; index after it, or -1."""
    for f in range(FIELDS):
        fields[f, 0] = _ABSENT
    rows = 0
    i = skip_ws(buf, i + 1, e)
    if i < e and buf[i] == RBRACE:
        return i + 1
    while True:
        j = string_end(buf, i, e)
        if j < 0:
            return -1
        f = _field(buf, i + 1, j - 1)
        i = skip_ws(buf, j, e)
        if i >= e or buf[i] != COLON:
            return -1
        i = skip_ws(buf, i + 1, e)
        if i >= e:
            return -1
        c = buf[i]
        if f < 0:
            i = skip_scalar(buf, i, e)
            if i < 0:
                return -1
        elif fields[f, 0] != _ABSENT:  # duplicate key: leave it to the JSON decoder
            return -1
        elif c == 34:  # "
            j = string_end(buf, i, e)
            if j < 0:
                return -1
            fields[f, 0], fields[f, 1], fields[f, 2] = _STR, i + 1, j - 1
            i = j
        elif c == LBRACKET:
            n, j = _levels(buf, i, e, lv, rows, price_scale, size_scale)
            if n < 0:
                return -1
            fields[f, 0], fields[f, 1], fields[f, 2] = _LEVELS, rows, n
            rows += n
            i = j
        elif c == 116 or c == 102:  # true / false
            j = literal(buf, i, e, _TRUE if c == 116 else _FALSE)
            if j < 0:
                return -1
            fields[f, 0], fields[f, 1] = _BOOL, 1 if c == 116 else 0
            i = j
        else:
            value, j = json_uint(buf, i, e)
            if j < 0:
                return -1
            fields[f, 0], fields[f, 1] = _INT, value
            i = j
        i = skip_ws(buf, i, e)
        if i < e and buf[i] == COMMA:
            i = skip_ws(buf, i + 1, e)
            continue
        if i < e and buf[i] == RBRACE:
            return i + 1
        return -1


@kernel
def _is(fields: Any, f: int, kind: int) -> bool:
    return bool(fields[f, 0] == kind)


@kernel
def _room(st: Any, out: Any, need: int) -> bool:
    """Whether ``need`` more records fit in ``out``; if not, the converter is asked to grow it
    (``S_NEED``) and the line is converted again."""
    if st[S_COUNT] + need > len(out):
        st[S_NEED] = need
        return False
    return True


@kernel
def _stamp(buf: Any, s: int, e: int, st: Any) -> tuple[int, int]:
    """(receive time, index of the JSON) of ``<receive_ts_ns> <json>``, or (0, -1) when the
    stamp is not plain digits fitting int64 or goes backwards."""
    i = s
    ts = 0
    while i < e and 48 <= buf[i] <= 57:
        digit = int(buf[i]) - 48
        if ts > (INT64_MAX - digit) // 10:  # nanosecond stamps have 19 digits: guard int64
            return 0, -1
        ts = ts * 10 + digit
        i += 1
    if i == s or i >= e or buf[i] != 32 or i + 1 >= e or ts < st[S_LAST_TS]:
        return 0, -1
    return ts, i + 1


@kernel
def _envelope(
    buf: Any, i: int, e: int, fields: Any, lv: Any, price_scale: int, size_scale: int
) -> tuple[int, int]:
    """The envelope ``{"stream": "...", "data": {...}}`` (keys in any order) at ``i``: the
    stream name's bounds, with ``data`` parsed into ``fields``/``lv``; (-1, -1) if not plain."""
    i = skip_ws(buf, i, e)
    if i >= e or buf[i] != LBRACE:
        return -1, -1
    i = skip_ws(buf, i + 1, e)
    stream_s, stream_e, have_data = -1, -1, False
    while True:
        j = string_end(buf, i, e)
        if j < 0:
            return -1, -1
        key_s, key_e = i + 1, j - 1
        i = skip_ws(buf, j, e)
        if i >= e or buf[i] != COLON:
            return -1, -1
        i = skip_ws(buf, i + 1, e)
        if same(buf, key_s, key_e, _STREAM):
            j = string_end(buf, i, e)
            if j < 0 or stream_s >= 0:
                return -1, -1
            stream_s, stream_e = i + 1, j - 1
        elif same(buf, key_s, key_e, _DATA):
            if have_data or i >= e or buf[i] != LBRACE:
                return -1, -1
            j = _data(buf, i, e, fields, lv, price_scale, size_scale)
            if j < 0:
                return -1, -1
            have_data = True
        else:
            j = skip_scalar(buf, i, e)
            if j < 0:
                return -1, -1
        i = skip_ws(buf, j, e)
        if i < e and buf[i] == COMMA:
            i = skip_ws(buf, i + 1, e)
            continue
        if i < e and buf[i] == RBRACE:
            break
        return -1, -1
    if skip_ws(buf, i + 1, e) != e or stream_s < 0 or not have_data:
        return -1, -1
    return stream_s, stream_e


@kernel
def _kind(buf: Any, s: int, e: int, fields: Any, symbol: Any) -> int:
    """0 depth, 1 trade, 2 bookTicker: the stream's kind, tested in the order
    ``binance_messages.stream_kind`` tests it, if its event name and symbol are as expected;
    else -1."""
    if contains(buf, s, e, _AT_DEPTH):
        kind, name = 0, _DEPTH_UPDATE
    elif contains(buf, s, e, _AT_TRADE):
        kind, name = 1, _TRADE
    elif contains(buf, s, e, _AT_TICKER):
        kind, name = 2, _BOOK_TICKER
    else:
        return -1
    if _is(fields, _E_NAME, _STR):
        if not same(buf, fields[_E_NAME, 1], fields[_E_NAME, 2], name):
            return -1
    elif kind != 2 or not _is(fields, _E_NAME, _ABSENT):  # only spot bookTicker lacks "e"
        return -1
    if not _is(fields, _SYM, _STR) or not same(buf, fields[_SYM, 1], fields[_SYM, 2], symbol):
        return -1
    return kind


@kernel
def _depth(ts: int, futures: bool, st: Any, out: Any, fields: Any, lv: Any) -> int:
    """A depthUpdate that continues the chain: its level records; -1 for Python (a gap, a
    snapshot straddle decision, an odd field), -2 when ``out`` is too small."""
    if not (
        _is(fields, _E_TIME, _INT)
        and _is(fields, _FIRST_U, _INT)
        and _is(fields, _LAST_U, _INT)
        and _is(fields, _BIDS, _LEVELS)
        and _is(fields, _ASKS, _LEVELS)
        and (_is(fields, _T_TIME, _INT) or _is(fields, _T_TIME, _ABSENT))
        and (_is(fields, _PREV_U, _INT) or (_is(fields, _PREV_U, _ABSENT) and not futures))
    ):
        return -1
    if fields[_E_TIME, 1] > MAX_E_MS:
        return -1
    first_u, last_u = fields[_FIRST_U, 1], fields[_LAST_U, 1]
    # Sequencer.on_depth without a gap (a gap or a straddle decision goes to Python)
    if st[S_HAS_PREV]:
        if futures:
            if fields[_PREV_U, 1] != st[S_PREV_U]:
                return -1
        elif first_u != st[S_PREV_U] + 1:
            return -1
    if st[S_HAS_PENDING] and last_u >= st[S_PENDING]:
        return -1
    n = st[S_COUNT]
    total = int(fields[_BIDS, 2] + fields[_ASKS, 2])
    if not _room(st, out, total):
        return -2
    ts_event = fields[_E_TIME, 1] * _MS
    flags = 0
    if total and st[S_PENDING_GAP]:
        flags = _F_GAP
        st[S_PENDING_GAP] = 0
    k = 0
    for side, f in ((1, _BIDS), (-1, _ASKS)):
        row = fields[f, 1]
        for r in range(row, row + fields[f, 2]):
            fl = flags | (_F_FIRST if k == 0 else 0) | (_F_LAST if k == total - 1 else 0)
            put_record(
                out, n + k, _T_LEVEL, side, fl, 0, ts_event, ts,
                lv[r, 0], lv[r, 1], last_u, first_u, 0,
            )  # fmt: skip
            k += 1
    if not st[S_HAS_PREV]:
        st[S_HAS_PREV] = 1
        st[S_CHAIN_START] = first_u
    st[S_PREV_U] = last_u
    st[S_PREV_FIRST] = first_u
    return total


@kernel
def _trade(buf: Any, ts: int, price_scale: int, size_scale: int, st: Any, out: Any,
           fields: Any) -> int:  # fmt: skip
    """A trade with a new trade id: its record; -1 for Python, -2 when ``out`` is full."""
    if not (
        _is(fields, _E_TIME, _INT)
        and _is(fields, _TRADE_ID, _INT)
        and _is(fields, _PRICE, _STR)
        and _is(fields, _QTY, _STR)
        and _is(fields, _T_TIME, _INT)
        and _is(fields, _MAKER, _BOOL)
    ):
        return -1
    if fields[_E_TIME, 1] > MAX_E_MS or fields[_TRADE_ID, 1] <= st[S_LAST_TRADE]:
        return -1
    price = unsigned(buf, fields[_PRICE, 1], fields[_PRICE, 2], price_scale)
    size = unsigned(buf, fields[_QTY, 1], fields[_QTY, 2], size_scale)
    if price < 0 or size < 0:
        return -1
    n = st[S_COUNT]
    if not _room(st, out, 1):
        return -2
    side = -1 if fields[_MAKER, 1] else 1
    trade_id = fields[_TRADE_ID, 1]
    ts_event = fields[_E_TIME, 1] * _MS
    put_record(out, n, _T_TRADE, side, _F_LAST, 0, ts_event, ts, price, size, trade_id, 0, 0)
    st[S_LAST_TRADE] = trade_id
    return 1


@kernel
def _ticker(buf: Any, ts: int, price_scale: int, size_scale: int, st: Any, out: Any,
            fields: Any) -> int:  # fmt: skip
    """A bookTicker (``b``/``B``/``a``/``A`` strings, ``E`` optional): its quote record; -1
    for Python, -2 when ``out`` is full."""
    if not (
        _is(fields, _LAST_U, _INT)
        and _is(fields, _BIDS, _STR)
        and _is(fields, _BID_QTY, _STR)
        and _is(fields, _ASKS, _STR)
        and _is(fields, _ASK_QTY, _STR)
        and (_is(fields, _E_TIME, _INT) or _is(fields, _E_TIME, _ABSENT))
    ):
        return -1
    bid = unsigned(buf, fields[_BIDS, 1], fields[_BIDS, 2], price_scale)
    bid_size = unsigned(buf, fields[_BID_QTY, 1], fields[_BID_QTY, 2], size_scale)
    ask = unsigned(buf, fields[_ASKS, 1], fields[_ASKS, 2], price_scale)
    ask_size = unsigned(buf, fields[_ASK_QTY, 1], fields[_ASK_QTY, 2], size_scale)
    if bid < 0 or bid_size < 0 or ask < 0 or ask_size < 0:
        return -1
    ts_event = ts
    if _is(fields, _E_TIME, _INT):
        if fields[_E_TIME, 1] > MAX_E_MS:
            return -1
        ts_event = fields[_E_TIME, 1] * _MS
    n = st[S_COUNT]
    if not _room(st, out, 1):
        return -2
    put_record(
        out, n, _T_QUOTE, 0, _F_LAST, 0, ts_event, ts,
        bid, bid_size, fields[_LAST_U, 1], ask, ask_size,
    )  # fmt: skip
    return 1


@kernel
def _line(
    buf: Any, s: int, e: int, symbol: Any, price_scale: int, size_scale: int, futures: bool,
    st: Any, out: Any, fields: Any, lv: Any,
) -> int:  # fmt: skip
    """Convert one line; the number of records written, -1 for the Python path, -2 to grow.

    The steps, each of which hands the line to Python when it is not sure: the receive stamp
    (:func:`_stamp`), the envelope and its ``data`` (:func:`_envelope`, :func:`_data`), the
    stream's kind, event name and symbol (:func:`_kind`), then the message itself
    (:func:`_depth`, :func:`_trade`, :func:`_ticker`), which writes its records.
    """
    ts, i = _stamp(buf, s, e, st)
    if i < 0:
        return -1
    stream_s, stream_e = _envelope(buf, i, e, fields, lv, price_scale, size_scale)
    if stream_s < 0:
        return -1
    kind = _kind(buf, stream_s, stream_e, fields, symbol)
    if kind == 0:
        written = _depth(ts, futures, st, out, fields, lv)
    elif kind == 1:
        written = _trade(buf, ts, price_scale, size_scale, st, out, fields)
    elif kind == 2:
        written = _ticker(buf, ts, price_scale, size_scale, st, out, fields)
    else:
        return -1
    if written >= 0:
        st[S_LAST_TS] = ts
    return written


@kernel
def scan(
    buf: Any, pos: int, end: int, symbol: Any, price_scale: int, size_scale: int,
    futures: bool, chunk: int, st: Any, out: Any, fields: Any, lv: Any,
) -> tuple[int, int, int]:  # fmt: skip
    """Convert lines from ``pos`` while they are plain: (status, position, lines done).

    ``st`` holds the converter state (``S_*`` slots) and is updated as lines are converted;
    records go to ``out`` (int64 words, ``st[S_COUNT]`` used). On SLOW the line at the
    returned position is untouched; on GROW ``st[S_NEED]`` records must fit.
    """
    lines = 0
    while pos < end:
        stop, nxt = line_end(buf, pos, end)
        r = _line(buf, pos, stop, symbol, price_scale, size_scale, futures, st, out, fields, lv)
        if r == -1:
            return SLOW, pos, lines
        if r == -2:
            return GROW, pos, lines
        st[S_COUNT] += r
        pos = nxt
        lines += 1
        if st[S_COUNT] >= chunk:
            return FULL, pos, lines
    return DONE, pos, lines
