"""The toy strategy's compiled loop: one pass over ``book.top`` records, state kept between calls.

State: float64[5] holds the L1 it last saw (bid, ask, bid size, ask size: it acts only on
changes) and the EMA of mid; int64[4] holds its position from its own submitted orders, the
time of its last order (far in the past before the first), the EMA's time and whether the EMA
has started. The rules are in the ``toy`` stage's docstring (:mod:`streams.toy.stage`).
"""

from __future__ import annotations

import math
from typing import Any

from numba import njit

NS = 1e9
S_BID, S_ASK, S_BID_SIZE, S_ASK_SIZE, S_EMA = range(5)
I_POSITION, I_LAST_ORDER_TS, I_EMA_TS, I_STARTED = range(4)
W_TS, W_BID, W_BID_SIZE, W_ASK, W_ASK_SIZE = 1, 5, 15, 25, 35
"""Words of a ``book.top`` record read as int64: word 0 packs type id, status (bits 16-23)
and levels; the best level of each side is the first of its ten words."""
SYNCED, STALE = 1, 2
"""``book.top`` status bits: only a synced, fresh book is quoted."""
NEVER = -(2**62)
"""Time of the last order before there is one: every spacing has passed since."""


@njit(cache=True)
def decide(
    tops: Any,
    fstate: Any,
    istate: Any,
    out_index: Any,
    out_side: Any,
    tau_s: float,
    spacing_ns: int,
    threshold: float,
    min_imbalance: float,
    order_size: int,
    max_position: int,
) -> int:
    """Apply ``tops`` (``book.top`` records as rows of int64 words) in order; write (top
    index, side) of each order sent; return how many."""
    n = 0
    for i in range(len(tops)):
        top = tops[i]
        b, a, bq, aq = top[W_BID], top[W_ASK], top[W_BID_SIZE], top[W_ASK_SIZE]
        ts, status = top[W_TS], (top[0] >> 16) & 0xFF
        if (
            b == fstate[S_BID]
            and a == fstate[S_ASK]
            and bq == fstate[S_BID_SIZE]
            and aq == fstate[S_ASK_SIZE]
        ):
            continue  # a change deeper in the book: the top of book did not move
        fstate[S_BID], fstate[S_ASK], fstate[S_BID_SIZE], fstate[S_ASK_SIZE] = b, a, bq, aq
        if b <= 0 or a <= b or status & SYNCED == 0 or status & STALE != 0:
            continue  # no two-sided, uncrossed quote from a usable book: no mid
        mid = (b + a) / 2.0
        if istate[I_STARTED] == 0:
            fstate[S_EMA], istate[I_EMA_TS], istate[I_STARTED] = mid, ts, 1
            continue
        dt = (ts - istate[I_EMA_TS]) / NS
        fstate[S_EMA] += (1.0 - math.exp(-dt / tau_s)) * (mid - fstate[S_EMA])
        istate[I_EMA_TS] = ts
        if ts - istate[I_LAST_ORDER_TS] < spacing_ns:
            continue
        imbalance = (bq - aq) / (bq + aq)
        ema = fstate[S_EMA]
        side = 0
        if mid > ema * (1.0 + threshold) and imbalance > min_imbalance:
            side = 1
        elif mid < ema * (1.0 - threshold) and imbalance < -min_imbalance:
            side = -1
        if side == 0 or abs(istate[I_POSITION] + side * order_size) > max_position:
            continue
        istate[I_POSITION] += side * order_size
        istate[I_LAST_ORDER_TS] = ts
        out_index[n], out_side[n] = i, side
        n += 1
    return n
