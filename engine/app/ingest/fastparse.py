"""Compiled (numba) pieces the fast importers share: exact decimals and strict JSON tokens.

Everything here reads a uint8 array ``buf`` between indices and never builds Python objects.
The functions are deliberately narrower than the Python path they shadow: each returns a
failure for anything outside the plain, common form (escapes, non-ASCII, values too long to
be sure of), and the importer then hands that line to the exact Python path, which decides
what it is. So a failure here is "not sure", never "bad".

Decimals follow :func:`engine.app.ingest.decimal.parse_scaled` digit for digit: no floats, the
same accepted forms (``[-]digits[.digits]``, ``.5``, leading zeros, zeros past the scale) and
refusals. Values that might not fit in int64 (more than 18 significant digits including the
scale) are "not sure"; the Python path computes them exactly and applies its range checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from numba import njit

_F = TypeVar("_F", bound=Callable[..., Any])
_njit: Any = njit  # the type stubs do not list the ``_nrt`` option


def kernel(fn: _F) -> _F:
    """``numba.njit`` as the ingest parsers are compiled: cached, GIL released, no NRT.

    Without the runtime's reference counting (``_nrt=False``, as numba's own string kernels
    are compiled) a call between compiled functions does not update two atomic counters for
    each array argument; with it, that was half of the parse time. It requires that the
    function allocates no arrays, which none of the parsers does.
    """
    return cast(_F, _njit(cache=True, nogil=True, _nrt=False)(fn))


MAX_DIGITS = 18
"""Digits that always fit int64 (10**18 - 1 < 2**63 - 1)."""

QUOTE, BACKSLASH, COMMA, COLON = 34, 92, 44, 58
LBRACKET, RBRACKET, LBRACE, RBRACE = 91, 93, 123, 125
MINUS, DOT, ZERO, NINE = 45, 46, 48, 57
NEWLINE, RETURN = 10, 13


@kernel
def decimal(buf: Any, s: int, e: int, scale: int) -> tuple[bool, int, int]:
    """The decimal number that starts at ``s``: (ok, value in ``10**-scale`` units, end).

    It reads ``[-]digits[.digits]`` as far as it goes and stops at the first other byte
    (``end``); the caller decides whether that byte may follow (a comma, a quote, a newline).
    ok is False for what :func:`~engine.app.ingest.decimal.parse_scaled` refuses (no digits, a
    dot without decimals, a non-zero digit beyond the scale) and for values of more than
    :data:`MAX_DIGITS` significant digits once scaled.
    """
    negative = False
    if s < e and buf[s] == MINUS:
        negative = True
        s += 1
    value = 0
    significant = 0
    i = s
    while i < e:
        c = buf[i]
        if c < ZERO or c > NINE:
            break
        digit = int(c) - ZERO
        if significant or digit:
            significant += 1
            if significant + scale > MAX_DIGITS:
                return False, 0, i
        value = value * 10 + digit
        i += 1
    whole = i - s
    used = 0
    if i < e and buf[i] == DOT:
        i += 1
        first = i
        while i < e:
            c = buf[i]
            if c < ZERO or c > NINE:
                break
            if used < scale:
                value = value * 10 + (int(c) - ZERO)
                used += 1
            elif c != ZERO:  # a non-zero digit beyond the scale: not representable
                return False, 0, i
            i += 1
        if i == first:  # "1." has a dot and no decimals
            return False, 0, i
    elif whole == 0:  # "" or "-"
        return False, 0, i
    while used < scale:
        value *= 10
        used += 1
    return True, -value if negative else value, i


@kernel
def scaled(buf: Any, s: int, e: int, scale: int) -> tuple[bool, int]:
    """``buf[s:e]`` as an integer of ``10**-scale`` units: (True, value) or (False, 0).

    False covers every text :func:`~engine.app.ingest.decimal.parse_scaled` refuses and values with
    more than :data:`MAX_DIGITS` significant digits once scaled.
    """
    ok, value, end = decimal(buf, s, e, scale)
    if not ok or end != e:
        return False, 0
    return True, value


@kernel
def next_line(buf: Any, i: int, e: int) -> int:
    """Start of the next line if only carriage returns remain of this one at ``i``, else -1.

    Line-by-line reading strips trailing carriage returns, so they may end a value; at the
    end of the block (``e``) the line ends without a newline (the last line of a file).
    """
    while i < e and buf[i] == RETURN:
        i += 1
    if i == e:
        return e
    return i + 1 if buf[i] == NEWLINE else -1


@kernel
def line_end(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """(content end, next line start) of the line at ``pos``, as ``iter_lines`` cuts it.

    The content stops before the newline with trailing carriage returns removed
    (``rstrip(b"\\r\\n")``); a last line without a newline runs to ``end``.
    """
    nl = pos
    while nl < end and buf[nl] != NEWLINE:
        nl += 1
    stop = nl
    while stop > pos and buf[stop - 1] == RETURN:
        stop -= 1
    return stop, (nl + 1 if nl < end else end)


@kernel
def skip_ws(buf: Any, i: int, e: int) -> int:
    """First index at or after ``i`` that is not JSON whitespace, or is a newline.

    A line never contains a newline, so stopping at one keeps a parser inside its line.
    """
    while i < e:
        c = buf[i]
        if c != 32 and c != 9 and c != 13:
            break
        i += 1
    return i


@kernel
def string_end(buf: Any, i: int, e: int) -> int:
    """Index after the JSON string starting at ``i`` (a quote), or -1 if not a plain one.

    Plain: printable ASCII, no escapes, so its bytes are its value.
    """
    if i >= e or buf[i] != QUOTE:
        return -1
    i += 1
    while i < e:
        c = buf[i]
        if c == QUOTE:
            return i + 1
        if c == BACKSLASH or c < 32 or c >= 127:
            return -1
        i += 1
    return -1


@kernel
def json_uint(buf: Any, i: int, e: int) -> tuple[int, int]:
    """(value, index after) of a JSON integer >= 0 with at most 18 digits at ``i``; else (0, -1).

    Anything that would make it a float (fraction, exponent) or invalid JSON (leading zero)
    is a failure.
    """
    if i >= e:
        return 0, -1
    value = 0
    j = i
    if buf[i] == ZERO:
        j = i + 1
    else:
        while j < e and ZERO <= buf[j] <= NINE:
            value = value * 10 + (int(buf[j]) - ZERO)
            j += 1
        if j == i or j - i > MAX_DIGITS:
            return 0, -1
    if j < e:
        c = buf[j]
        if c == DOT or c == 101 or c == 69 or ZERO <= c <= NINE:  # . e E or "01"
            return 0, -1
    return value, j


@kernel
def literal(buf: Any, i: int, e: int, word: Any) -> int:
    """Index after ``word`` (uint8 array) if it is at ``i``, else -1."""
    n = len(word)
    if i + n > e:
        return -1
    for k in range(n):
        if buf[i + k] != word[k]:
            return -1
    return i + n


TRUE = np.frombuffer(b"true", np.uint8)
FALSE = np.frombuffer(b"false", np.uint8)
NULL = np.frombuffer(b"null", np.uint8)


@kernel
def skip_scalar(buf: Any, i: int, e: int) -> int:
    """Index after a plain JSON string, true, false, null or short integer at ``i``; else -1.

    Used for fields the importer ignores. JSON decoding still validates them, so anything
    less plain (objects, arrays, floats) is left to the exact path.
    """
    if i >= e:
        return -1
    c = buf[i]
    if c == QUOTE:
        return string_end(buf, i, e)
    if c == 116:
        return literal(buf, i, e, TRUE)
    if c == 102:
        return literal(buf, i, e, FALSE)
    if c == 110:
        return literal(buf, i, e, NULL)
    if c == MINUS:
        i += 1
        if i < e and buf[i] == MINUS:
            return -1
    return json_uint(buf, i, e)[1]


@kernel
def same(buf: Any, s: int, e: int, word: Any) -> bool:
    """Whether ``buf[s:e]`` equals ``word`` (uint8 array)."""
    n = len(word)
    if e - s != n:
        return False
    k = 0
    while k < n and buf[s + k] == word[k]:
        k += 1
    return k == n


@kernel
def contains(buf: Any, s: int, e: int, word: Any) -> bool:
    """Whether ``word`` (uint8 array) occurs in ``buf[s:e]``."""
    n = len(word)
    for i in range(s, e - n + 1):
        k = 0
        while k < n and buf[i + k] == word[k]:
            k += 1
        if k == n:
            return True
    return False


@kernel
def unsigned(buf: Any, s: int, e: int, scale: int) -> int:
    """:func:`scaled` for a field that must not be negative: the value, or -1 where it is
    refused or negative (every Binance price and size)."""
    ok, value = scaled(buf, s, e, scale)
    return value if ok and value >= 0 else -1


@kernel
def scaled_text(buf: Any, scale: int) -> tuple[bool, int]:
    """:func:`scaled` over a whole array (for tests and callers holding one value)."""
    return scaled(buf, 0, len(buf), scale)


@kernel
def put_record(
    out: Any, n: int, type_id: int, side: int, flags: int, aux: int, ts_event: int,
    ts_recv: int, price: int, size: int, ident: int, price2: int, size2: int,
) -> None:  # fmt: skip
    """Write ``MARKET_RECORD`` number ``n`` of ``out`` (its eight int64 words).

    Word 0 packs type_id (u2), side (i1), flags (u1) and aux (u4); then ts_event, ts_recv and
    the five payload slots (``engine.events.market``)."""
    out[n, 0] = type_id | ((side & 0xFF) << 16) | (flags << 24) | (aux << 32)
    out[n, 1] = ts_event
    out[n, 2] = ts_recv
    out[n, 3] = price
    out[n, 4] = size
    out[n, 5] = ident
    out[n, 6] = price2
    out[n, 7] = size2


def parse_scaled_fast(text: bytes, scale: int) -> int | None:
    """The compiled decimal parser on ``text``: its value, or None where it leaves the decision
    to :func:`~engine.app.ingest.decimal.parse_scaled` (refused or possibly out of int64 range)."""
    if not 0 <= scale <= MAX_DIGITS:
        return None
    ok, value = scaled_text(np.frombuffer(text, np.uint8), scale)
    return int(value) if ok else None
