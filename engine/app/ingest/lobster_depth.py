"""LOBSTER's revealed depth: the levels its orderbook file shows that its messages cannot.

A LOBSTER message file holds only events inside the first 10 levels, so a book rebuilt from
the messages alone (``window=10``) loses every level that enters the window from below: when
the best bid is consumed, the orderbook row shows an 11th level moving up that no message ever
mentioned, and a thin side can even run empty while the venue still has bids. On the GOOG day
that left the rebuilt level 1 wrong on three rows in four. The orderbook row is the venue's own
book after the message, so it is market data too: after each message this module compares the
book the journal implies (the previous state, the message applied, cut to the window, exactly
as the ``book`` processor does it) with the row, and writes each difference into the journal
as a ``market.level_updated`` record (side, price, new size; 0 removes the level). The message
record then no longer ends the source message: its last correction carries ``F_LAST``, so the
book is consistent, and equal to the orderbook row, at every ``F_LAST``. Tiled copies of a
sample (the peers' benchmark input) jump back to the first row's book at each seam; the same
corrections carry that jump.

The oracle rows (``<session>.oracle``) then point at the last record of their message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from numba import njit

from engine.app.ingest.session import Item, Oracle
from engine.events.market import F_LAST, LEVEL_UPDATED, MARKET_RECORD
from streams.book import kernel as book

WINDOW = 10
"""Levels a side of the default LOBSTER file (the book processor's window for NASDAQ)."""


@njit(cache=True)
def _apply(keys: Any, sizes: Any, meta: Any, t: int, s: int, key: int, size: int, f: int) -> None:
    """One record's effect on the levels, as the book kernel applies it (windowed, L2 only)."""
    if t == 8:
        if f & book.F_FIRST:
            meta[0] = meta[1] = 0
        book._set_level(keys, sizes, meta, s, key, size)
    elif t == 6:
        book._set_level(keys, sizes, meta, s, key, size)
    elif 2 <= t <= 5:
        book._add_level(keys, sizes, meta, s, key, size if t == 2 else -size)


@njit(cache=True)
def _cut(keys: Any, sizes: Any, meta: Any, window: int) -> None:
    for w in range(2):
        if meta[w] > window:
            drop = meta[w] - window
            keys[w, :window] = keys[w, drop : meta[w]].copy()
            sizes[w, :window] = sizes[w, drop : meta[w]].copy()
            meta[w] = window


@njit(cache=True)
def _has(prices: Any, amounts: Any, price: int) -> int:
    """The size at ``price`` in a row's side (0 when absent)."""
    for j in range(len(prices)):
        if amounts[j] > 0 and prices[j] == price:
            return int(amounts[j])
    return 0


@njit(cache=True)
def _matches(
    keys: Any, sizes: Any, meta: Any, s: int, want_p: Any, want_s: Any, window: int
) -> bool:
    """Whether the best ``window`` levels of side ``s`` are the row's, best first."""
    sign = 1 if s == 0 else -1
    held = min(meta[s], window)
    shown = 0
    for j in range(len(want_p)):
        if want_s[j] <= 0:
            continue
        if shown == held:
            return False
        at = meta[s] - 1 - shown
        if keys[s, at] * sign != want_p[j] or sizes[s, at] != want_s[j]:
            return False
        shown += 1
    return bool(shown == held)


@njit(cache=True, inline="always")
def _put(out: Any, n: int, i: int, side: int, price: int, size: int) -> int:
    """Write correction ``n`` (after record ``i``); the next free row, or -1 when full."""
    if n == len(out):
        return -1
    out[n, 0], out[n, 1], out[n, 2], out[n, 3] = i, side, price, size
    return n + 1


@njit(cache=True)
def _fix_side(keys: Any, sizes: Any, meta: Any, s: int, want_p: Any, want_s: Any, i: int,
              out: Any, n: int) -> int:  # fmt: skip
    """Write the corrections that make side ``s`` (every level held) equal the row."""
    sign = 1 if s == 0 else -1
    for j in range(meta[s] - 1, -1, -1):  # levels held and not in the row: gone
        p = keys[s, j] * sign
        if _has(want_p, want_s, p) == 0:
            n = _put(out, n, i, sign, p, 0)
            if n < 0:
                return -1
    for j in range(len(want_p)):  # levels of the row held at another size, or not held
        if want_s[j] <= 0:
            continue
        at = book._find(keys, s, meta[s], want_p[j] * sign)
        held = sizes[s, at] if at < meta[s] and keys[s, at] == want_p[j] * sign else 0
        if held != want_s[j]:
            n = _put(out, n, i, sign, want_p[j], want_s[j])
            if n < 0:
                return -1
    return n


@njit(cache=True)
def reconcile(
    type_id: Any,
    side: Any,
    flags: Any,
    price: Any,
    size: Any,
    row_of: Any,
    row_price: Any,
    row_size: Any,
    keys: Any,
    sizes: Any,
    meta: Any,
    out: Any,
    window: int,
) -> int:
    """Walk the records; after each one tied to an orderbook row (``row_of`` >= 0) whose
    window differs from that row, write the corrections as rows (record index, side, price,
    size) of ``out`` and apply them. ``row_price``/``row_size`` are (rows, 2, 10): side 0
    bids, 1 asks, best first. Returns how many corrections; -1 if ``out`` is too small.

    A corrected message loses F_LAST, so the book processor cuts its levels to the window only
    after the last correction: the corrections are computed against every level held then,
    including those the cut would drop, which is what makes the two agree.
    """
    n = 0
    for i in range(len(type_id)):
        s = 0 if side[i] > 0 else 1
        _apply(keys, sizes, meta, type_id[i], s, price[i] if s == 0 else -price[i], size[i],
               flags[i])  # fmt: skip
        r = row_of[i]
        if r >= 0 and not (
            _matches(keys, sizes, meta, 0, row_price[r, 0], row_size[r, 0], window)
            and _matches(keys, sizes, meta, 1, row_price[r, 1], row_size[r, 1], window)
        ):
            first = n
            for s in range(2):
                n = _fix_side(keys, sizes, meta, s, row_price[r, s], row_size[r, s], i, out, n)
                if n < 0:
                    return -1
            for c in range(first, n):
                s = 0 if out[c, 1] > 0 else 1
                key = out[c, 2] * (1 if s == 0 else -1)
                book._set_level(keys, sizes, meta, s, key, out[c, 3])
        if flags[i] & F_LAST:
            _cut(keys, sizes, meta, window)
    return n


class DepthReconciler:
    """Inserts the corrections into a LOBSTER converter's items (see the module docstring).

    Items arrive as each flush of the converter gives them: an array of market records, then
    the :class:`Oracle` rows of those records (their ``offset`` holds the ordinal of the market
    record each follows, counting market records only). Anything else passes through.
    """

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        """Levels a side of the file (up to ten: the rows are ``book.top`` records)."""
        cap = 4 * WINDOW
        self.keys = np.zeros((2, cap), np.int64)
        self.sizes = np.zeros((2, cap), np.int64)
        self.meta = np.zeros(book.META_SIZE, np.int64)
        self.ordinal = 0  # ordinal (before corrections) of the next market record
        self.added = 0  # corrections inserted so far

    def items(self, items: Iterable[Item]) -> Iterator[Item]:
        """``items`` with the corrections inserted and the oracle's ordinals moved to match."""
        held: np.ndarray[Any, Any] | None = None
        for item in items:
            if isinstance(item, Oracle):
                records, tops = self._block(held, item.tops)
                if records is not None:
                    yield records
                yield Oracle(tops)
                held = None
                continue
            if held is not None:
                records, _ = self._block(held, None)
                assert records is not None
                yield records
                held = None
            if isinstance(item, np.ndarray):
                held = item
            else:
                yield item
        if held is not None:
            records, _ = self._block(held, None)
            assert records is not None
            yield records

    def _block(
        self, records: np.ndarray[Any, Any] | None, oracle: np.ndarray[Any, Any] | None
    ) -> tuple[np.ndarray[Any, Any] | None, Any]:
        n = 0 if records is None else len(records)
        base, shift = self.ordinal, self.added
        row_of = np.full(n, -1, np.int64)
        tops: Any = np.zeros(0) if oracle is None else oracle  # the converter's own: edited here
        inside = np.zeros(0, bool)
        ordinals = np.zeros(0, np.int64)
        if len(tops):
            ordinals = tops["offset"].astype(np.int64)
            inside = ordinals >= base
            row_of[ordinals[inside] - base] = np.flatnonzero(inside)
            tops["offset"][~inside] = ordinals[~inside] + shift
        if records is None:
            return None, tops
        fixes = self._corrections(records, row_of, tops)
        out = _with_corrections(records, fixes)
        self.ordinal += n
        self.added += len(fixes)
        if len(tops):
            # a row follows its message's last record: the message's own, or its last fix
            per = np.bincount(fixes[:, 0], minlength=n) if len(fixes) else np.zeros(n, np.int64)
            last = np.arange(n) + np.cumsum(per)
            rows = np.flatnonzero(inside)
            tops["offset"][rows] = base + shift + last[ordinals[rows] - base]
        return out, tops

    def _corrections(
        self, records: np.ndarray[Any, Any], row_of: np.ndarray[Any, Any], tops: Any
    ) -> np.ndarray[Any, Any]:
        r = records.view(MARKET_RECORD)
        if len(tops):
            row_price = np.stack([tops["bid_price"], tops["ask_price"]], axis=1)
            row_size = np.stack([tops["bid_size"], tops["ask_size"]], axis=1)
        else:
            row_price = row_size = np.zeros((0, 2, WINDOW), np.int64)
        out = np.zeros((max(64, 8 * len(tops)), 4), np.int64)
        while True:
            saved = (self.keys.copy(), self.sizes.copy(), self.meta.copy())
            n = reconcile(
                r["type_id"], r["side"], r["flags"], r["price"], r["size"], row_of,
                np.ascontiguousarray(row_price), np.ascontiguousarray(row_size),
                self.keys, self.sizes, self.meta, out, self.window,
            )  # fmt: skip
            if n >= 0:
                return out[:n]
            self.keys, self.sizes, self.meta = saved
            out = np.zeros((2 * len(out), 4), np.int64)


def _with_corrections(records: np.ndarray[Any, Any], fixes: np.ndarray[Any, Any]) -> Any:
    """``records`` with each correction inserted after the record it follows; the last
    record of each corrected message carries F_LAST instead of the message's own record."""
    if not len(fixes):
        return records
    n, m = len(records), len(fixes)
    out = np.zeros(n + m, records.dtype)
    at = fixes[:, 0]
    before = np.searchsorted(at, np.arange(n), side="left")  # corrections before record i
    out[np.arange(n) + before] = records
    view = out.view(MARKET_RECORD)
    corrected = np.unique(at)
    view["flags"][corrected + before[corrected]] &= ~np.uint8(F_LAST)
    where = at + np.arange(m) + 1
    source = records.view(MARKET_RECORD)[at]
    view["type_id"][where] = LEVEL_UPDATED.type_id
    view["side"][where] = fixes[:, 1]
    view["price"][where] = fixes[:, 2]
    view["size"][where] = fixes[:, 3]
    view["ts_event"][where] = source["ts_event"]
    view["ts_recv"][where] = source["ts_recv"]
    ends = np.r_[at[1:] != at[:-1], True]
    view["flags"][where[ends]] = F_LAST
    return out
