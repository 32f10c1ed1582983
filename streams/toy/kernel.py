"""The toy strategy's compiled loop: the peers' reference rules, evaluated where they evaluate.

The reference is ``ToyLogic.on_book`` of the peers' harness (``shared/peers/lobster_common.py``)
as NautilusTrader calls it in quotes+trades mode: once per *callback*, a callback being

* a **quote**: a ``book.top`` whose level 1 (best bid, best ask or either size) differs from the
  previous top's, from a synced, fresh book with both sides present; it replaces the quote the
  strategy holds;
  A top caused by a book snapshot is neither: the peers' feed starts with the book *after*
  the first message, while a LOBSTER journal starts with the book before it;
* a **trade print**: a ``market.order_executed`` record, or a ``market.trade`` with an aggressor
  side (a visible or hidden execution; an auction cross has no aggressor and is not one); it
  keeps the quote held.

Callbacks run in journal order; a trade and the top its message caused share a message, and the
trade comes first (its offset is the message's first record, the top's its last), as in the
peers' conversion. Every callback with a two-sided quote (``0 < bid < ask``) does, in float64,
in the reference's units (prices in the quote currency, sizes in whole units) and the
reference's order of operations, so the same inputs give the same bits:

    mid = 0.5 * (bid + ask)
    ema = mid on the first such callback,
          else ema += (1 - exp(-(ts - ema_ts) / tau_ns)) * (mid - ema)
    no order if ts - last_order_ts < spacing_ns
    imbalance = (bid_size - ask_size) / (bid_size + ask_size);  dev = (mid - ema) / ema
    buy  if dev >  threshold and imbalance >  min_imbalance and position + size <=  max_position
    sell if dev < -threshold and imbalance < -min_imbalance and position - size >= -max_position

``position`` is the sum of the orders sent (fills do not come back).

State: ``fstate`` float64[5] (bid, ask, bid size, ask size of the quote held; the EMA) and
``istate`` int64[10] (the ``I_*`` slots: the last level 1 seen, raw, to find changes; the quote's
integer bid and ask; position; time of the last order; time of the EMA, -1 before it starts).
"""

from __future__ import annotations

import math
from typing import Any

from numba import njit

S_BID, S_ASK, S_BID_SIZE, S_ASK_SIZE, S_EMA = range(5)
FLOATS = 5
(
    I_SEEN_BID,
    I_SEEN_ASK,
    I_SEEN_BID_SIZE,
    I_SEEN_ASK_SIZE,
    I_QUOTE_BID,
    I_QUOTE_ASK,
    I_POSITION,
    I_LAST_ORDER_TS,
    I_EMA_TS,
) = range(9)
INTS = 9
W_TS, W_OFFSET, W_BID, W_BID_SIZE, W_ASK, W_ASK_SIZE = 1, 3, 5, 15, 25, 35
"""Words of a ``book.top`` record read as int64: word 0 packs type id, status (bits 16-23)
and levels; the best level of each side is the first of its ten words."""
SYNCED, STALE = 1, 2
"""``book.top`` status bits: only a synced, fresh book is quoted."""
NEVER = -(1 << 62)
"""Time of the last order before there is one (the reference's starting value)."""


@njit(cache=True)
def _quote(top: Any, fstate: Any, istate: Any, price_unit: float, size_unit: float) -> bool:
    """Take ``top`` as the quote if its level 1 changed and is usable; whether it is a callback."""
    b, a, bq, aq = top[W_BID], top[W_ASK], top[W_BID_SIZE], top[W_ASK_SIZE]
    if (
        b == istate[I_SEEN_BID]
        and a == istate[I_SEEN_ASK]
        and bq == istate[I_SEEN_BID_SIZE]
        and aq == istate[I_SEEN_ASK_SIZE]
    ):
        return False  # a change deeper in the book: no quote
    istate[I_SEEN_BID], istate[I_SEEN_ASK] = b, a
    istate[I_SEEN_BID_SIZE], istate[I_SEEN_ASK_SIZE] = bq, aq
    status = (top[0] >> 16) & 0xFF
    if status & SYNCED == 0 or status & STALE != 0 or bq <= 0 or aq <= 0 or b == 0 or a == 0:
        return False  # no usable quote on either side
    istate[I_QUOTE_BID], istate[I_QUOTE_ASK] = b, a
    fstate[S_BID], fstate[S_ASK] = b / price_unit, a / price_unit
    fstate[S_BID_SIZE], fstate[S_ASK_SIZE] = bq / size_unit, aq / size_unit
    return True


@njit(cache=True)
def _on_book(ts: int, fstate: Any, istate: Any, p: Any, ip: Any) -> int:
    """``ToyLogic.on_book`` on the quote held: +1 buy, -1 sell, 0 nothing."""
    bid, ask = fstate[S_BID], fstate[S_ASK]
    bq, aq = fstate[S_BID_SIZE], fstate[S_ASK_SIZE]
    if not (ask > bid > 0.0) or bq + aq <= 0.0:
        return 0
    mid = 0.5 * (bid + ask)
    if istate[I_EMA_TS] < 0:
        fstate[S_EMA] = mid
    else:
        fstate[S_EMA] += (1.0 - math.exp(-(ts - istate[I_EMA_TS]) / p[0])) * (mid - fstate[S_EMA])
    istate[I_EMA_TS] = ts
    if ts - istate[I_LAST_ORDER_TS] < ip[0]:
        return 0
    imbalance = (bq - aq) / (bq + aq)
    dev = (mid - fstate[S_EMA]) / fstate[S_EMA]
    size, cap = ip[1], ip[2]
    side = 0
    if dev > p[1] and imbalance > p[2] and istate[I_POSITION] + size <= cap:
        side = 1
    elif dev < -p[1] and imbalance < -p[2] and istate[I_POSITION] - size >= -cap:
        side = -1
    if side != 0:
        istate[I_POSITION] += side * size
        istate[I_LAST_ORDER_TS] = ts
    return side


@njit(cache=True)
def decide(
    tops: Any,
    snapshot: Any,
    trade_offset: Any,
    trade_ts: Any,
    fstate: Any,
    istate: Any,
    params: Any,
    iparams: Any,
    out: Any,
) -> int:
    """Run the callbacks of one slice in journal order; write each order as a row of ``out``
    (cause offset, ts, side, bid, ask: the integer quote it was sent on); return how many.

    ``tops`` are ``book.top`` records as rows of int64 words, ``snapshot[i]`` whether a book
    snapshot caused top ``i``; ``trade_offset``/``trade_ts`` the
    slice's trade prints. ``params``: tau in ns, threshold (a fraction), min imbalance, price
    unit, size unit; ``iparams``: spacing in ns, order size, max position (size units).
    """
    n, t, k = 0, 0, 0
    while t < len(tops) or k < len(trade_offset):
        if k < len(trade_offset) and (t == len(tops) or trade_offset[k] <= tops[t, W_OFFSET]):
            offset, ts = trade_offset[k], trade_ts[k]
            k += 1
        else:
            top = tops[t]
            t += 1
            if snapshot[t - 1] or not _quote(top, fstate, istate, params[3], params[4]):
                continue
            offset, ts = top[W_OFFSET], top[W_TS]
        side = _on_book(ts, fstate, istate, params, iparams)
        if side != 0:
            out[n, 0], out[n, 1], out[n, 2] = offset, ts, side
            out[n, 3], out[n, 4] = istate[I_QUOTE_BID], istate[I_QUOTE_ASK]
            n += 1
    return n
