"""The simulated venue's compiled loop: our orders against the replayed market, event by event.

All state is numpy (snapshot = copy); the Python side is :mod:`streams.trading.execution`.

* ``orders[k, O_*]``: a small table of our live orders (in flight to the venue or working at
  it); ``cancels[k, C_*]``: cancel requests in flight; ``behind[k, :O_NBEHIND]``: with order
  ids (FIFO mode), the venue ids of orders that joined our price level after order ``k``.
* ``st[S_*]`` (int64) and ``fs[F_*]`` (float64): clock, timer, venue position, book status,
  counters, slice cursors, the next arrival due; last mid and what the circuit-breaker check
  needs.
* ``top``: the ``book.top`` record in effect, as int64 words (levels: bid prices, bid sizes,
  ask prices, ask sizes, 10 each, from word 5). Journal records, tops and mids reach the loop
  as int64 (and float64) views of their bytes: nothing is copied per event.
* ``rows``: what the venue reports, as ``(kind, slice index, ts, order id, a, b, c, d)``.

:func:`run` walks journal events in order. Per event: the record acts on working orders
(trades, and with order ids adds / cancels / executions at our price), the event's
``book.top`` updates queues and crossing fills, its ``book.mid`` can trigger stops, then
orders and cancels that have reached the venue act on this new state, then triggered stops
execute. It returns to Python *before* an event that moves the clock to the timer (``TIMER``),
*after* an event that produced reports, breached the loss floor or carries a decision
(``AFTER``), or before an add it has no room to remember (``GROW``). With nothing working the
per-event cost is a few comparisons.
"""

from __future__ import annotations

from typing import Any

from numba import njit

from streams.trading.portfolio import equity_at

O_STATE, O_ID, O_SEQ, O_SIDE, O_KIND, O_PRICE, O_LEFT, O_ARRIVE = range(8)
O_AHEAD, O_CROSSED, O_REDUCE, O_TRIGGERED, O_NBEHIND = range(8, 13)
N_ORDER = 13
FREE, FLIGHT, WORKING = 0, 1, 2
MARKET, LIMIT, STOP = 1, 2, 3
C_ID, C_SEQ, C_ARRIVE = range(3)
S_CLOCK, S_WAKE, S_POSITION, S_STATUS, S_HAVE_TOP, S_ACTIVE, S_CANCELS = range(7)
S_FIFO, S_TP, S_MP, S_DP, S_ROWS, S_BREACH, S_DUE = range(7, 14)
N_S = 14
F_MID, F_MID_OK, F_BASE, F_FEES, F_AVG, F_SLOPE, F_FLOOR = range(7)
N_F = 7
E_ACK, E_FILL, E_CANCEL, E_REJECT = 1, 2, 3, 4
CANCEL_REQUESTED, CANCEL_THIN, CANCEL_POSITION_CLOSED = 1, 2, 3
REJECT_BOOK_NOT_READY, REJECT_NO_LIQUIDITY, REJECT_TOO_LATE = 1, 2, 3
DONE, TIMER, AFTER, GROW = 0, 1, 2, 3
LEVELS = 10
TOP_WORDS = 45
"""A ``book.top`` record read as int64 words: word 3 is its offset, words 5.. its levels."""
BID_P, BID_S, ASK_P, ASK_S = 5, 15, 25, 35
T_OFFSET = 3
M_CAUSE, M_MID = 2, 4
"""Words of a ``book.mid`` record (the mid is a float64: read it from a float view)."""
R_TS, R_PRICE, R_SIZE, R_ID = 1, 3, 4, 5
"""Words of a 64-byte market record; word 0 packs type (16 bits), side, flags and aux."""
SYNCED, STALE = 1, 2
T_TRADE, T_ADDED, T_CANCELLED, T_DELETED, T_EXECUTED = 1, 2, 3, 4, 5
HIDDEN = 0x04


@njit(cache=True)
def _row(rows: Any, st: Any, kind: int, i: int, oid: int, a: int, b: int, c: int, d: int) -> None:
    n = st[S_ROWS]
    rows[n, 0], rows[n, 1], rows[n, 2], rows[n, 3] = kind, i, st[S_CLOCK], oid
    rows[n, 4], rows[n, 5], rows[n, 6], rows[n, 7] = a, b, c, d
    st[S_ROWS] = n + 1


@njit(cache=True)
def _free(orders: Any, st: Any, k: int) -> None:
    orders[k, O_STATE] = FREE
    st[S_ACTIVE] -= 1


@njit(cache=True)
def _cancel(orders: Any, st: Any, rows: Any, i: int, k: int, reason: int) -> None:
    _row(rows, st, E_CANCEL, i, orders[k, O_ID], orders[k, O_LEFT], reason, 0, 0)
    _free(orders, st, k)


@njit(cache=True)
def _reduces(position: int, side: int) -> bool:
    return position != 0 and (position > 0) != (side > 0)


@njit(cache=True)
def _fill(
    orders: Any, st: Any, rows: Any, i: int, k: int, price: int, size: int, taker: int
) -> None:
    """Execute ``size`` of order ``k``; reduce-only orders never exceed the position."""
    side = orders[k, O_SIDE]
    if orders[k, O_REDUCE]:
        position = st[S_POSITION]
        size = min(size, abs(position)) if _reduces(position, side) else 0
    if size <= 0:
        return
    orders[k, O_LEFT] -= size
    st[S_POSITION] += side * size
    _row(rows, st, E_FILL, i, orders[k, O_ID], price, size, orders[k, O_LEFT], taker)
    if orders[k, O_LEFT] == 0:
        _free(orders, st, k)
    if st[S_POSITION] == 0:  # flat: the venue drops reduce-only orders (one cancels other)
        for j in range(len(orders)):
            if orders[j, O_STATE] == WORKING and orders[j, O_REDUCE]:
                _cancel(orders, st, rows, i, j, CANCEL_POSITION_CLOSED)


@njit(cache=True)
def _usable(st: Any) -> bool:
    return bool(st[S_HAVE_TOP] == 1 and st[S_STATUS] & SYNCED != 0 and st[S_STATUS] & STALE == 0)


@njit(cache=True)
def _better_or_at(side: int, price: int, limit: int) -> bool:
    """Whether an opposite-side ``price`` is at or through our ``limit`` on ``side``."""
    return price <= limit if side > 0 else price >= limit


@njit(cache=True)
def _take(orders: Any, st: Any, rows: Any, i: int, k: int, book: Any, limit: int) -> None:
    """Walk the opposite side's levels as a taker (up to ``limit`` when it is not 0)."""
    side = orders[k, O_SIDE]
    prices = ASK_P if side > 0 else BID_P
    for j in range(LEVELS):
        if orders[k, O_STATE] != WORKING:
            return
        price = book[prices + j]
        if price == 0 or (limit != 0 and not _better_or_at(side, price, limit)):
            return
        _fill(orders, st, rows, i, k, price, min(orders[k, O_LEFT], book[prices + 10 + j]), 1)


@njit(cache=True)
def _market(orders: Any, st: Any, rows: Any, i: int, k: int, book: Any) -> None:
    _take(orders, st, rows, i, k, book, 0)
    if orders[k, O_STATE] == WORKING:  # ten levels were not enough: the rest is cancelled
        _cancel(orders, st, rows, i, k, CANCEL_THIN)


@njit(cache=True)
def level(book: Any, side: int, price: int) -> tuple[bool, int]:
    """(visible, size) of our own side's level at ``price`` in a 10-level top.

    Visible means at or better than the worst level shown (or better than the best: an empty
    level inside the spread); deeper prices, and every price of an empty side, are unknown.
    """
    base = BID_P if side > 0 else ASK_P
    n = 0
    while n < LEVELS and book[base + n] != 0:
        n += 1
    if n == 0:
        return False, 0
    best, worst = book[base], book[base + n - 1]
    if (side > 0 and price > best) or (side < 0 and price < best):
        return True, 0  # better than our side's best: an empty level inside the spread
    if (side > 0 and price < worst) or (side < 0 and price > worst):
        return False, 0
    for j in range(n):
        if book[base + j] == price:
            return True, book[base + 10 + j]
    return True, 0


@njit(cache=True)
def _crossed_size(book: Any, side: int, price: int) -> int:
    """Opposite size quoted at or through ``price`` (0: the opposite side does not reach it)."""
    base = ASK_P if side > 0 else BID_P
    total = 0
    for j in range(LEVELS):
        p = book[base + j]
        if p == 0 or not _better_or_at(side, p, price):
            break
        total += book[base + 10 + j]
    return total


@njit(cache=True)
def _is_behind(behind: Any, orders: Any, k: int, oid: int) -> bool:
    for j in range(orders[k, O_NBEHIND]):  # a loop: numba compiles no generator  # noqa: SIM110
        if behind[k, j] == oid:
            return True
    return False


@njit(cache=True)
def _on_trade(
    orders: Any, behind: Any, st: Any, rows: Any, i: int, t: int, s: int, f: int, r: Any
) -> None:
    """A trade print or an L3 execution (type ``t``, side ``s``, flags ``f``, record words
    ``r``) against working orders."""
    p, q, oid = r[R_PRICE], r[R_SIZE], r[R_ID]
    aggressor = -s if t == T_EXECUTED else s
    for k in range(len(orders)):
        if orders[k, O_STATE] != WORKING:
            continue
        side, limit = orders[k, O_SIDE], orders[k, O_PRICE]
        if orders[k, O_KIND] == STOP:
            if _better_or_at(side, limit, p):  # sell stop: p <= stop; buy stop: p >= stop
                orders[k, O_TRIGGERED] = 1
            continue
        if orders[k, O_KIND] != LIMIT or aggressor == side:
            continue
        left = orders[k, O_LEFT]
        if p != limit and _better_or_at(side, p, limit):  # traded through our price
            _fill(orders, st, rows, i, k, limit, min(left, q), 0)
        elif p == limit and st[S_FIFO] and t == T_EXECUTED:
            if _is_behind(behind, orders, k, oid):  # a later order filled: so were we
                orders[k, O_AHEAD] = 0
                _fill(orders, st, rows, i, k, limit, min(left, q), 0)
            elif orders[k, O_AHEAD] > 0:
                orders[k, O_AHEAD] = max(orders[k, O_AHEAD] - q, 0)
        elif p == limit and not (st[S_FIFO] and f & HIDDEN) and orders[k, O_AHEAD] >= 0:
            excess = q - orders[k, O_AHEAD]
            orders[k, O_AHEAD] = max(orders[k, O_AHEAD] - q, 0)
            if excess > 0:
                _fill(orders, st, rows, i, k, limit, min(left, excess), 0)


@njit(cache=True)
def _on_order(orders: Any, behind: Any, t: int, s: int, r: Any) -> None:
    """With order ids: an add at our price queues behind us; a cancel of another leaves."""
    p, q, oid = r[R_PRICE], r[R_SIZE], r[R_ID]
    for k in range(len(orders)):
        if not (orders[k, O_STATE] == WORKING and orders[k, O_KIND] == LIMIT):
            continue
        if orders[k, O_SIDE] != s or orders[k, O_PRICE] != p:
            continue
        if t == T_ADDED:
            behind[k, orders[k, O_NBEHIND]] = oid
            orders[k, O_NBEHIND] += 1
        elif orders[k, O_AHEAD] > 0 and not _is_behind(behind, orders, k, oid):
            orders[k, O_AHEAD] = max(orders[k, O_AHEAD] - q, 0)


@njit(cache=True)
def _on_top(orders: Any, st: Any, rows: Any, i: int, book: Any) -> None:
    """A new book state: the queue ahead can only shrink to the level; crossings fill."""
    if not _usable(st):
        return
    for k in range(len(orders)):
        if not (orders[k, O_STATE] == WORKING and orders[k, O_KIND] == LIMIT):
            continue
        side, limit = orders[k, O_SIDE], orders[k, O_PRICE]
        visible, size = level(book, side, limit)
        if visible and (orders[k, O_AHEAD] < 0 or size < orders[k, O_AHEAD]):
            orders[k, O_AHEAD] = size
        crossing = _crossed_size(book, side, limit)
        if crossing > 0 and orders[k, O_CROSSED] == 0:
            orders[k, O_CROSSED] = 1
            _fill(orders, st, rows, i, k, limit, min(orders[k, O_LEFT], crossing), 0)
        elif crossing == 0:
            orders[k, O_CROSSED] = 0


@njit(cache=True)
def _on_mid(orders: Any, fs: Any) -> None:
    for k in range(len(orders)):
        if orders[k, O_STATE] == WORKING and orders[k, O_KIND] == STOP:
            side, stop = orders[k, O_SIDE], orders[k, O_PRICE]
            if fs[F_MID_OK] and (fs[F_MID] <= stop if side < 0 else fs[F_MID] >= stop):
                orders[k, O_TRIGGERED] = 1


@njit(cache=True)
def _arrive(orders: Any, st: Any, fs: Any, rows: Any, i: int, k: int, book: Any) -> None:
    """Order ``k`` reaches the venue and acts on the book state in effect."""
    orders[k, O_STATE] = WORKING
    kind, side, price = orders[k, O_KIND], orders[k, O_SIDE], orders[k, O_PRICE]
    if orders[k, O_REDUCE] and not _reduces(st[S_POSITION], side):
        _cancel(orders, st, rows, i, k, CANCEL_POSITION_CLOSED)
    elif kind == MARKET and not _usable(st):
        _row(rows, st, E_REJECT, i, orders[k, O_ID], 0, REJECT_BOOK_NOT_READY, 0, 0)
        _free(orders, st, k)
    elif kind == MARKET and book[ASK_P if side > 0 else BID_P] == 0:
        _row(rows, st, E_REJECT, i, orders[k, O_ID], 0, REJECT_NO_LIQUIDITY, 0, 0)
        _free(orders, st, k)
    elif kind == MARKET:
        _row(rows, st, E_ACK, i, orders[k, O_ID], 0, 0, 0, 0)
        _market(orders, st, rows, i, k, book)
    elif kind == LIMIT:
        orders[k, O_AHEAD] = -1
        if _usable(st):
            visible, size = level(book, side, price)
            if visible:
                orders[k, O_AHEAD] = size
        orders[k, O_NBEHIND] = 0
        _row(rows, st, E_ACK, i, orders[k, O_ID], orders[k, O_AHEAD], 0, 0, 0)
        if _usable(st) and _crossed_size(book, side, price) > 0:  # marketable: take, rest
            orders[k, O_CROSSED] = 1
            _take(orders, st, rows, i, k, book, price)
    else:
        _row(rows, st, E_ACK, i, orders[k, O_ID], -1, 0, 0, 0)
        _on_mid(orders, fs)


@njit(cache=True)
def settle(orders: Any, cancels: Any, st: Any, fs: Any, rows: Any, i: int, book: Any) -> None:
    """Everything due by the clock reaches the venue (by arrival time, then submission), then
    triggered stops execute as market orders (or wait for a usable book)."""
    while st[S_DUE] <= st[S_CLOCK]:
        best, best_cancel, arrive, seq = -1, False, 0, 0
        for k in range(len(orders)):
            if orders[k, O_STATE] == FLIGHT and orders[k, O_ARRIVE] <= st[S_CLOCK]:
                a, q = orders[k, O_ARRIVE], orders[k, O_SEQ]
                if best < 0 or a < arrive or (a == arrive and q < seq):
                    best, best_cancel, arrive, seq = k, False, a, q
        for k in range(len(cancels)):
            if cancels[k, C_ID] != 0 and cancels[k, C_ARRIVE] <= st[S_CLOCK]:
                a, q = cancels[k, C_ARRIVE], cancels[k, C_SEQ]
                if best < 0 or a < arrive or (a == arrive and q < seq):
                    best, best_cancel, arrive, seq = k, True, a, q
        if best < 0:
            st[S_DUE] = next_due(orders, cancels)
            break
        if best_cancel:
            _cancel_arrives(orders, cancels, st, rows, i, best)
        else:
            _arrive(orders, st, fs, rows, i, best, book)
    for k in range(len(orders)):
        fire = (
            orders[k, O_STATE] == WORKING and orders[k, O_KIND] == STOP and orders[k, O_TRIGGERED]
        )
        if fire and _usable(st) and book[ASK_P if orders[k, O_SIDE] > 0 else BID_P] != 0:
            orders[k, O_KIND] = MARKET
            _market(orders, st, rows, i, k, book)


@njit(cache=True)
def next_due(orders: Any, cancels: Any) -> int:
    """The earliest arrival of an order or cancel still on its way (int64 max: none)."""
    due = 9223372036854775807
    for k in range(len(orders)):
        if orders[k, O_STATE] == FLIGHT:
            due = min(due, orders[k, O_ARRIVE])
    for k in range(len(cancels)):
        if cancels[k, C_ID] != 0:
            due = min(due, cancels[k, C_ARRIVE])
    return due


@njit(cache=True)
def _cancel_arrives(orders: Any, cancels: Any, st: Any, rows: Any, i: int, c: int) -> None:
    oid = cancels[c, C_ID]
    cancels[c, C_ID] = 0
    st[S_CANCELS] -= 1
    for k in range(len(orders)):
        if orders[k, O_STATE] == WORKING and orders[k, O_ID] == oid:
            _cancel(orders, st, rows, i, k, CANCEL_REQUESTED)
            return
    _row(rows, st, E_REJECT, i, oid, 0, REJECT_TOO_LATE, 0, 0)


@njit(cache=True)
def _behind_full(orders: Any, behind: Any) -> bool:
    for k in range(len(orders)):
        if orders[k, O_STATE] == WORKING and orders[k, O_NBEHIND] == behind.shape[1]:
            return True
    return False


@njit(cache=True)
def _breached(st: Any, fs: Any) -> bool:
    if st[S_POSITION] == 0 or not fs[F_MID_OK]:
        return False
    equity = equity_at(fs[F_BASE], fs[F_FEES], fs[F_AVG], fs[F_SLOPE], fs[F_MID])
    return bool(equity <= fs[F_FLOOR])


@njit(cache=True)
def run(
    base: int,
    records: Any,
    tops: Any,
    mids: Any,
    mid_values: Any,
    dec_at: Any,
    st: Any,
    fs: Any,
    top: Any,
    orders: Any,
    cancels: Any,
    behind: Any,
    rows: Any,
    start: int,
) -> tuple[int, int]:
    """Walk records ``start..`` of a slice whose first record is journal offset ``base``;
    returns (index, reason) as the module docstring describes."""
    book = top if st[S_TP] == 0 else tops[st[S_TP] - 1]
    for i in range(start, len(records)):
        r = records[i]
        clock = max(st[S_CLOCK], r[R_TS])
        if clock >= st[S_WAKE]:
            top[:] = book
            return i, TIMER
        active = st[S_ACTIVE] + st[S_CANCELS] > 0
        t, s, f = r[0] & 0xFFFF, (r[0] >> 16) & 0xFF, (r[0] >> 24) & 0xFF
        s = s - 256 if s >= 128 else s  # a signed byte
        if active and st[S_FIFO] and t == T_ADDED and _behind_full(orders, behind):
            top[:] = book
            return i, GROW
        st[S_CLOCK] = clock
        trade = t == T_TRADE
        if active and (trade or t == T_EXECUTED):
            _on_trade(orders, behind, st, rows, i, t, s, f, r)
        elif active and st[S_FIFO] and T_ADDED <= t <= T_DELETED:
            _on_order(orders, behind, t, s, r)
        tp = st[S_TP]
        if tp < len(tops) and tops[tp, T_OFFSET] == base + i:
            book = tops[tp]
            st[S_STATUS], st[S_HAVE_TOP], st[S_TP] = (book[0] >> 16) & 0xFF, 1, tp + 1
            if active:
                _on_top(orders, st, rows, i, book)
        mp = st[S_MP]
        if mp < len(mids) and mids[mp, M_CAUSE] == base + i:
            two_sided = (mids[mp, 0] >> 16) & 0xFF
            fs[F_MID_OK] = 1.0 if two_sided else 0.0
            if two_sided:
                fs[F_MID] = mid_values[mp, M_MID]
            st[S_MP] = mp + 1
            if active:
                _on_mid(orders, fs)
        if active:
            settle(orders, cancels, st, fs, rows, i, book)
        breach = _breached(st, fs)
        st[S_BREACH] = 1 if breach else 0
        dp = st[S_DP]
        if st[S_ROWS] > 0 or breach or (dp < len(dec_at) and dec_at[dp] == i):
            top[:] = book
            return i, AFTER
    top[:] = book
    return len(records), DONE
