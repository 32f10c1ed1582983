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
OUT_HEAD = 5  # offset, ts_event, ts_recv, update_id, status
_HASH = 0x9E3779B1  # odd multiplier: spreads sequential order ids over the table


@njit(cache=True, inline="always")
def _find(keys: Any, n: int, key: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _set_level(keys: Any, sizes: Any, meta: Any, s: int, key: int, size: int) -> None:
    n = meta[s]
    i = _find(keys[s], n, key)
    if i < n and keys[s, i] == key:
        if size > 0:
            sizes[s, i] = size
        else:
            keys[s, i : n - 1] = keys[s, i + 1 : n].copy()
            sizes[s, i : n - 1] = sizes[s, i + 1 : n].copy()
            meta[s] = n - 1
    elif size > 0:
        keys[s, i + 1 : n + 1] = keys[s, i:n].copy()
        sizes[s, i + 1 : n + 1] = sizes[s, i:n].copy()
        keys[s, i], sizes[s, i] = key, size
        meta[s] = n + 1


@njit(cache=True)
def _add_level(keys: Any, sizes: Any, meta: Any, s: int, key: int, delta: int) -> None:
    n = meta[s]
    i = _find(keys[s], n, key)
    if i < n and keys[s, i] == key:
        _set_level(keys, sizes, meta, s, key, max(sizes[s, i] + delta, 0))
    elif delta > 0:
        _set_level(keys, sizes, meta, s, key, delta)
    else:
        meta[M_MISSING] += 1  # a level the book does not hold (outside its window)


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _emit(keys: Any, sizes: Any, meta: Any, last: Any, out: Any, k: int, levels: int) -> bool:
    changed = last[4 * levels] != meta[M_STATUS] or last[4 * levels + 1] != meta[M_UPDATE_ID]
    for s in range(2):
        n = meta[s]
        sign = 1 if s == 0 else -1
        for j in range(levels):
            price, size = 0, 0
            if j < n:
                price, size = keys[s, n - 1 - j] * sign, sizes[s, n - 1 - j]
            base = 2 * s * levels + j
            if last[base] != price or last[base + levels] != size:
                changed = True
                last[base], last[base + levels] = price, size
    if changed:
        last[4 * levels], last[4 * levels + 1] = meta[M_STATUS], meta[M_UPDATE_ID]
        out[k, OUT_HEAD + 0 : OUT_HEAD + 4 * levels] = last[: 4 * levels]
        out[k, 3], out[k, 4] = meta[M_UPDATE_ID], meta[M_STATUS]
    return bool(changed)


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
    """Apply records ``start..`` to the state; returns (n_out, stopped_at, grow_what)."""
    cap, ocap = keys.shape[1], len(okeys)
    for i in range(start, len(type_id)):
        t, f = type_id[i], flags[i]
        s = 0 if side[i] > 0 else 1
        key = price[i] if s == 0 else -price[i]
        if meta[0] + 2 > cap or meta[1] + 2 > cap:
            return n_out, i, GROW_LEVELS
        if 2 * (meta[M_ORDERS] + 1) > ocap:
            return n_out, i, GROW_ORDERS
        touched = True
        if t == 8:  # book snapshot level
            if f & F_FIRST:
                meta[0] = meta[1] = 0
            _set_level(keys, sizes, meta, s, key, size[i])
            if f & F_LAST:
                meta[M_STATUS] = S_SYNCED | (S_STALE if f & F_GAP else 0)
                meta[M_UPDATE_ID] = ident[i]
                _replay(keys, sizes, meta, buf)
        elif t == 6:  # level updated
            uid = ident[i]
            if not sequenced:
                _set_level(keys, sizes, meta, s, key, size[i])
            elif meta[M_STATUS] == S_SYNCED and not f & F_GAP:
                if uid > meta[M_UPDATE_ID]:
                    _set_level(keys, sizes, meta, s, key, size[i])
                    if f & F_LAST:
                        meta[M_UPDATE_ID] = uid
            else:
                if f & F_GAP:  # the chain broke: what was buffered can never be applied
                    if meta[M_STATUS] & S_SYNCED:
                        meta[M_STATUS] |= S_STALE
                    if f & F_FIRST:
                        meta[M_BUFFERED] = 0
                _buffer(buf, meta, side[i], price[i], size[i], uid, f)
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
            touched = False
        if touched and f & F_LAST:
            if window > 0:
                for w in range(2):
                    if meta[w] > window:
                        drop = meta[w] - window
                        meta[M_DROPPED] += drop
                        keys[w, :window] = keys[w, drop : meta[w]].copy()
                        sizes[w, :window] = sizes[w, drop : meta[w]].copy()
                        meta[w] = window
            if _emit(keys, sizes, meta, last, out, n_out, levels):
                out[n_out, 0], out[n_out, 1], out[n_out, 2] = (
                    base_offset + i,
                    ts_event[i],
                    ts_recv[i],
                )
                n_out += 1
    return n_out, len(type_id), 0
