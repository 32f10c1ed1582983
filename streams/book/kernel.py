"""The compiled hot loop of the ``book`` processor (numba, no Python objects inside).

Layout of the state (all numpy, so snapshot/restore is a copy):

* ``keys[2, cap]``, ``sizes[2, cap]``: price levels of side 0 (bids) and 1 (asks), each sorted
  ascending by *key*, where key = price for bids and -price for asks. The best level of either
  side is therefore the last one (``keys[s, count[s] - 1]``), and most book activity, which is
  near the top, shifts only a few elements on insert or delete.
* ``meta``: counters and flags, indexed by the ``M_*`` constants below.
* ``okeys``/``oside``/``oprice``/``osize``: the L3 order map, open addressing with linear probing
  on ``order_id + 1`` (0 marks an empty slot) and backward-shift deletion (no tombstones).
* ``buf``: level updates received while the book is unsynced or stale, as rows of (side, price,
  size, update id, flags): Binance's procedure buffers the stream *before* the snapshot and
  applies what follows the snapshot's ``lastUpdateId``. If it fills, the older half is dropped
  and the highest update id dropped is remembered: a snapshot older than that leaves the book
  stale.
* ``last``: the last emitted top (4 x levels) plus status and update id, to emit only on change.
* ``out``: the emitted tops, written directly as ``book.top`` records seen as rows of
  ``TOP_WORDS`` int64 words (header words ``W_*``, then ten bid prices, ten bid sizes, ten ask
  prices, ten ask sizes); the processor hands them on as a view, without a copy.

Levels move by explicit loops, never by slice copies: a slice copy allocates a temporary array
on every insert and delete, which cost more than everything else the loop does.

The kernel stops early (returning the index it stopped at) when a table needs to grow; the
caller grows it and resumes at the same record, so growth happens at the same record however
the input is cut into batches.
"""

from __future__ import annotations

from typing import Any

from numba import njit

M_COUNT_BID, M_COUNT_ASK, M_STATUS, M_UPDATE_ID, M_DROPPED, M_MISSING, M_ORDERS = range(7)
M_BUFFERED, M_BUF_LOST_U = 7, 8
META_SIZE = 10
S_SYNCED, S_STALE = 1, 2
F_LAST, F_FIRST, F_GAP = 0x01, 0x02, 0x08
GROW_LEVELS, GROW_ORDERS = 1, 2
TOP_WORDS, TOP_LEVELS = 45, 10
W_HEAD, W_TS_EVENT, W_TS_RECV, W_OFFSET, W_UPDATE_ID, W_LEVELS = 0, 1, 2, 3, 4, 5
"""Words of a ``book.top`` record (engine.events.book): word 0 packs the type id (bits 0-15),
the status (16-23) and the level count (24-31); the four level arrays start at ``W_LEVELS``."""
_HASH = 0x9E3779B1  # odd multiplier: spreads sequential order ids over the table


@njit(cache=True, inline="always")
def _find(keys: Any, s: int, n: int, key: int) -> int:
    """Where ``key`` is, or would go, among the ``n`` sorted keys of side ``s``. (Indexing
    ``keys[s, i]`` rather than taking the row ``keys[s]``: a row view costs a reference
    count update per call, more than the search.)"""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[s, mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def _remove_at(keys: Any, sizes: Any, meta: Any, s: int, i: int) -> None:
    n = meta[s]
    for j in range(i, n - 1):
        keys[s, j], sizes[s, j] = keys[s, j + 1], sizes[s, j + 1]
    meta[s] = n - 1


@njit(cache=True, inline="always")
def _insert_at(keys: Any, sizes: Any, meta: Any, s: int, i: int, key: int, size: int) -> None:
    n = meta[s]
    for j in range(n, i, -1):
        keys[s, j], sizes[s, j] = keys[s, j - 1], sizes[s, j - 1]
    keys[s, i], sizes[s, i] = key, size
    meta[s] = n + 1


@njit(cache=True, inline="always")
def _set_level(keys: Any, sizes: Any, meta: Any, s: int, key: int, size: int) -> None:
    """Level ``key`` of side ``s`` now holds ``size`` (0: the level is gone)."""
    n = meta[s]
    i = _find(keys, s, n, key)
    if i < n and keys[s, i] == key:
        if size > 0:
            sizes[s, i] = size
        else:
            _remove_at(keys, sizes, meta, s, i)
    elif size > 0:
        _insert_at(keys, sizes, meta, s, i, key, size)


@njit(cache=True, inline="always")
def _add_level(keys: Any, sizes: Any, meta: Any, s: int, key: int, delta: int) -> None:
    """Add ``delta`` (may be negative) to level ``key`` of side ``s``."""
    n = meta[s]
    i = _find(keys, s, n, key)
    if i < n and keys[s, i] == key:
        size = sizes[s, i] + delta
        if size > 0:
            sizes[s, i] = size
        else:
            _remove_at(keys, sizes, meta, s, i)
    elif delta > 0:
        _insert_at(keys, sizes, meta, s, i, key, delta)
    else:
        meta[M_MISSING] += 1  # a level the book does not hold (outside its window)


@njit(cache=True, inline="always")
def _cut_to_window(keys: Any, sizes: Any, meta: Any, window: int) -> None:
    """Keep only the best ``window`` levels of each side."""
    for w in range(2):
        drop = meta[w] - window
        if drop > 0:
            meta[M_DROPPED] += drop
            for j in range(window):
                keys[w, j], sizes[w, j] = keys[w, j + drop], sizes[w, j + drop]
            meta[w] = window


@njit(cache=True, inline="always")
def _slot(okeys: Any, oid: int) -> int:
    mask = len(okeys) - 1
    h = (oid * _HASH) & mask
    while okeys[h] != 0 and okeys[h] != oid + 1:
        h = (h + 1) & mask
    return h


@njit(cache=True)
def _order_delete(okeys: Any, oside: Any, oprice: Any, osize: Any, meta: Any, h: int) -> None:
    mask = len(okeys) - 1
    okeys[h] = 0
    meta[M_ORDERS] -= 1
    j = (h + 1) & mask
    while okeys[j] != 0:  # backward-shift entries whose probe chain crossed the hole
        home = ((okeys[j] - 1) * _HASH) & mask
        if (j - home) & mask >= (j - h) & mask:
            okeys[h], oside[h], oprice[h], osize[h] = okeys[j], oside[j], oprice[j], osize[j]
            okeys[j] = 0
            h = j
        j = (j + 1) & mask


@njit(cache=True, inline="always")
def _order(
    okeys: Any,
    oside: Any,
    oprice: Any,
    osize: Any,
    meta: Any,
    t: int,
    oid: int,
    side: int,
    price: int,
    size: int,
) -> None:
    h = _slot(okeys, oid)
    if t == 2:
        if okeys[h] == 0:
            meta[M_ORDERS] += 1
        okeys[h], oside[h], oprice[h], osize[h] = oid + 1, side, price, size
    elif okeys[h] != 0:
        left = osize[h] - size
        if t == 4 or left <= 0:
            _order_delete(okeys, oside, oprice, osize, meta, h)
        else:
            osize[h] = left


@njit(cache=True)
def rehash(okeys: Any, oside: Any, oprice: Any, osize: Any, nkeys: Any, nside: Any,
           nprice: Any, nsize: Any) -> None:  # fmt: skip
    """Move every order of a full map into a larger, empty one (lookups are by key, so the
    order of insertion does not matter)."""
    for h in range(len(okeys)):
        if okeys[h] != 0:
            j = _slot(nkeys, okeys[h] - 1)
            nkeys[j], nside[j], nprice[j], nsize[j] = okeys[h], oside[h], oprice[h], osize[h]


@njit(cache=True)
def _modify(
    keys: Any, sizes: Any, meta: Any, okeys: Any, oside: Any, oprice: Any, osize: Any,
    oid: int, side: int, price: int, size: int,
) -> None:  # fmt: skip
    """An order's new price and size: its old quantity off the old level, the new one on."""
    h = _slot(okeys, oid)
    if okeys[h] != 0:
        s = 0 if oside[h] > 0 else 1
        _add_level(keys, sizes, meta, s, oprice[h] if s == 0 else -oprice[h], -osize[h])
    s = 0 if side > 0 else 1
    _add_level(keys, sizes, meta, s, price if s == 0 else -price, size)
    if size > 0:
        _order(okeys, oside, oprice, osize, meta, 2, oid, side, price, size)
    elif okeys[h] != 0:
        _order_delete(okeys, oside, oprice, osize, meta, h)


@njit(cache=True)
def _buffer(buf: Any, meta: Any, side: int, price: int, size: int, uid: int, f: int) -> None:
    n = meta[M_BUFFERED]
    if n == len(buf):
        half = n // 2
        meta[M_BUF_LOST_U] = max(meta[M_BUF_LOST_U], buf[:half, 3].max())
        buf[: n - half] = buf[half:n].copy()
        n -= half
    buf[n, 0], buf[n, 1], buf[n, 2], buf[n, 3], buf[n, 4] = side, price, size, uid, f
    meta[M_BUFFERED] = n + 1


@njit(cache=True)
def _replay(keys: Any, sizes: Any, meta: Any, buf: Any) -> None:
    """Apply buffered updates newer than the snapshot just applied, then forget the buffer."""
    if meta[M_BUF_LOST_U] > meta[M_UPDATE_ID]:
        meta[M_STATUS] |= S_STALE
    if meta[M_STATUS] == S_SYNCED:
        snap = meta[M_UPDATE_ID]
        for j in range(meta[M_BUFFERED]):
            if buf[j, 3] > snap:
                s = 0 if buf[j, 0] > 0 else 1
                _set_level(keys, sizes, meta, s, buf[j, 1] if s == 0 else -buf[j, 1], buf[j, 2])
                if buf[j, 4] & F_LAST:
                    meta[M_UPDATE_ID] = buf[j, 3]
    meta[M_BUFFERED] = 0
    meta[M_BUF_LOST_U] = 0


@njit(cache=True, inline="always")
def _emit(keys: Any, sizes: Any, meta: Any, last: Any, out: Any, k: int, levels: int) -> bool:
    """Write the top as record ``k`` of ``out`` if it differs from ``last`` (then updated)."""
    changed = last[4 * levels] != meta[M_STATUS] or last[4 * levels + 1] != meta[M_UPDATE_ID]
    for s in range(2):
        n = meta[s]
        sign = 1 if s == 0 else -1
        prices, amounts = W_LEVELS + 2 * s * TOP_LEVELS, W_LEVELS + (2 * s + 1) * TOP_LEVELS
        for j in range(levels):
            price, size = 0, 0
            if j < n:
                price, size = keys[s, n - 1 - j] * sign, sizes[s, n - 1 - j]
            base = 2 * s * levels + j
            if last[base] != price or last[base + levels] != size:
                changed = True
                last[base], last[base + levels] = price, size
            out[k, prices + j], out[k, amounts + j] = price, size
        for j in range(levels, TOP_LEVELS):
            out[k, prices + j], out[k, amounts + j] = 0, 0
    if changed:
        last[4 * levels], last[4 * levels + 1] = meta[M_STATUS], meta[M_UPDATE_ID]
        out[k, W_HEAD] = 9 | meta[M_STATUS] << 16 | TOP_LEVELS << 24  # book.top's type id: 9
        out[k, W_UPDATE_ID] = meta[M_UPDATE_ID]
    return bool(changed)


@njit(cache=True, inline="always")
def _apply(
    t: int, f: int, s: int, key: int, i: int, side: Any, price: Any, size: Any, ident: Any,
    price2: Any, size2: Any, keys: Any, sizes: Any, meta: Any, okeys: Any, oside: Any,
    oprice: Any, osize: Any, buf: Any, sequenced: bool, quote_book: bool,
) -> bool:  # fmt: skip
    """Apply record ``i`` (type ``t``, flags ``f``, book side ``s``, level key ``key``);
    whether it is one the book reads (a message it ends may change the top)."""
    if t == 8:  # book snapshot level
        if f & F_FIRST:
            meta[0] = meta[1] = 0
        _set_level(keys, sizes, meta, s, key, size[i])
        if f & F_LAST:
            meta[M_STATUS] = S_SYNCED | (S_STALE if f & F_GAP else 0)
            meta[M_UPDATE_ID] = ident[i]
            _replay(keys, sizes, meta, buf)
    elif t == 6:  # level updated
        if not sequenced:
            _set_level(keys, sizes, meta, s, key, size[i])
        else:
            _sequenced_update(keys, sizes, meta, buf, s, key, i, side, price, size, ident, f)
    elif 2 <= t <= 5:  # L3: added, cancelled, deleted, executed
        _add_level(keys, sizes, meta, s, key, size[i] if t == 2 else -size[i])
        _order(okeys, oside, oprice, osize, meta, t, ident[i], side[i], price[i], size[i])
    elif t == 20:  # order modified: its old quantity leaves its old level
        _modify(keys, sizes, meta, okeys, oside, oprice, osize, ident[i], side[i], price[i],
                size[i])  # fmt: skip
    elif t == 21:  # order filled: no level changes (the venue's cancel/modify does it)
        pass
    elif t == 22:  # book cleared
        meta[0] = meta[1] = 0
        okeys[:] = 0
        meta[M_ORDERS] = 0
    elif t == 7 and quote_book:  # quote defines the whole (level-1) book
        meta[0] = meta[1] = 0
        _set_level(keys, sizes, meta, 0, price[i], size[i])
        _set_level(keys, sizes, meta, 1, -price2[i], size2[i])
        meta[M_STATUS] = S_SYNCED
    else:
        return False
    return True


@njit(cache=True, inline="always")
def _sequenced_update(
    keys: Any, sizes: Any, meta: Any, buf: Any, s: int, key: int, i: int, side: Any,
    price: Any, size: Any, ident: Any, f: int,
) -> None:  # fmt: skip
    """A venue level update under Binance's rules: applied if newer than the book, else
    buffered until the next snapshot (a gap marks the book stale)."""
    uid = ident[i]
    if meta[M_STATUS] == S_SYNCED and not f & F_GAP:
        if uid > meta[M_UPDATE_ID]:
            _set_level(keys, sizes, meta, s, key, size[i])
            if f & F_LAST:
                meta[M_UPDATE_ID] = uid
        return
    if f & F_GAP:  # the chain broke: what was buffered can never be applied
        if meta[M_STATUS] & S_SYNCED:
            meta[M_STATUS] |= S_STALE
        if f & F_FIRST:
            meta[M_BUFFERED] = 0
    _buffer(buf, meta, side[i], price[i], size[i], uid, f)


@njit(cache=True)
def run(
    type_id: Any,
    side: Any,
    flags: Any,
    price: Any,
    size: Any,
    ident: Any,
    price2: Any,
    size2: Any,
    ts_event: Any,
    ts_recv: Any,
    start: int,
    base_offset: int,
    keys: Any,
    sizes: Any,
    meta: Any,
    okeys: Any,
    oside: Any,
    oprice: Any,
    osize: Any,
    buf: Any,
    last: Any,
    out: Any,
    n_out: int,
    levels: int,
    window: int,
    sequenced: bool,
    quote_book: bool,
) -> tuple[int, int, int]:
    """Apply records ``start..`` to the state; returns (n_out, stopped_at, grow_what).

    Per record: stop if a table may need to grow (the caller grows it and resumes here);
    apply it (:func:`_apply`); at the end of a source message (F_LAST) cut each side to the
    window and, if the top changed, write it as the next ``book.top`` of ``out``.
    """
    cap, ocap = keys.shape[1], len(okeys)
    for i in range(start, len(type_id)):
        if meta[0] + 2 > cap or meta[1] + 2 > cap:
            return n_out, i, GROW_LEVELS
        if 2 * (meta[M_ORDERS] + 1) > ocap:
            return n_out, i, GROW_ORDERS
        t, f = type_id[i], flags[i]
        s = 0 if side[i] > 0 else 1
        key = price[i] if s == 0 else -price[i]
        touched = _apply(
            t, f, s, key, i, side, price, size, ident, price2, size2, keys, sizes, meta,
            okeys, oside, oprice, osize, buf, sequenced, quote_book,
        )  # fmt: skip
        if touched and f & F_LAST:
            if window > 0:
                _cut_to_window(keys, sizes, meta, window)
            if _emit(keys, sizes, meta, last, out, n_out, levels):
                out[n_out, W_TS_EVENT], out[n_out, W_TS_RECV] = ts_event[i], ts_recv[i]
                out[n_out, W_OFFSET] = base_offset + i
                n_out += 1
    return n_out, len(type_id), 0
