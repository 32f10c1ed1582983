"""The compiled tape, footprint and book state of the agents, and what it measures per vector.

All compiled code of this module stays in this module on purpose: numba's on-disk cache is
invalidated by the source file of the cached function only (see ``streams.features.kernel``).
The rules that turn these measurements into votes are in :mod:`streams.agents.evaluate`.

State (numpy, so snapshot/restore is a copy; indices are the constants below):

* ``si`` (int64) and ``sf`` (float64): the clock, the L1, the last trade and the current run of
  same-side trades, the decayed trade rates and large prints, the trade-size EWMA, the depth
  imbalance of the last usable ``book.top`` and its event-time EMA.
* ``ring`` (int64, ``capacity x 4``): the trades of the footprint window, oldest at ``I_HEAD``:
  clock when applied, price row, size (size units), aggressor sign.
* ``fp`` (int64, ``2 x ROWS``): buy and sell volume per price row ``I_BASE + j`` over the ring's
  trades whose row is inside the array (exact integer sums, so any order of additions and
  removals gives the same numbers).

Journal records, ``book.top`` and feature vectors are merged by journal offset (record, then
the tops it caused, then the vector caused by it), so the state at a vector is the same however
the journal was sliced.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

NAN = np.nan
SEC = 1e9
BIG = np.iinfo(np.int64).max
ROWS = 512
"""Price rows the footprint keeps around the last trade; a trade outside re-centres them."""
WARM_TRADES = 20
"""Trades seen before a print can count as large (the size EWMA needs a history)."""

(I_CLOCK, I_STARTED, I_T0, I_L1, I_BID, I_ASK, I_TRADES, I_LAST_PX, I_LAST_SIGN, I_LAST_T,
 I_RUN_SIGN, I_RUN_LEN, I_ROW, I_BASE, I_HEAD, I_COUNT, I_T_RATE, I_T_LARGE, I_IMB_ON,
 I_T_IMB, I_T_IMB0) = range(21)  # fmt: skip
N_I = 21
F_SIZE, F_LARGE, F_FAST, F_SLOW, F_FAST_SIGNED, F_IMB, F_IMB_EMA = range(7)
N_F = 7
R_TS, R_ROW, R_SIZE, R_SIGN = range(4)
N_R = 4

# tape parameters (float64 array ``tp``)
(P_ROW_BPS, P_SIZE_ALPHA, P_LARGE_MULT, P_LARGE_TAU, P_FAST_TAU, P_SLOW_TAU, P_STACK_RATIO,
 P_STACK_SHARE, P_TREND_TAU, P_RUN_AGE) = range(10)  # fmt: skip
N_P = 10
# integer settings (int64 array ``cfg``)
C_L1_QUOTE, C_ROW_TICKS, C_TICK, C_WINDOW = range(4)
N_C = 4

# measurements per vector (columns of ``out``)
(M_TRADES, M_SINCE_TRADE, M_RUN, M_LARGE, M_FAST, M_SLOW, M_FAST_SIGNED, M_ACCEL_READY,
 M_FP_COUNT, M_FP_BUY, M_FP_SELL, M_FP_AVG, M_FP_BID_SELL, M_FP_ASK_BUY, M_FP_AT_HIGH,
 M_FP_AT_LOW, M_FP_HIGH_VOL, M_FP_LOW_VOL, M_FP_STACK_BUY, M_FP_STACK_SELL, M_FP_L1,
 M_IMB_TREND) = range(22)  # fmt: skip
N_M = 22

T_CLOCK, T_TRADE, T_EXECUTED, T_QUOTE = 0, 1, 5, 7
BOOK_SYNCED = 1
"""``book.top`` status of a usable book: synced and not stale."""


def new_state(capacity: int) -> tuple[np.ndarray[Any, Any], ...]:
    """Fresh ``(si, sf, ring, fp)``: nothing seen yet."""
    sf = np.zeros(N_F, np.float64)
    sf[F_IMB] = NAN
    sf[F_IMB_EMA] = NAN
    return (
        np.zeros(N_I, np.int64),
        sf,
        np.zeros((capacity, N_R), np.int64),
        np.zeros((2, ROWS), np.int64),
    )


# -- updates ---------------------------------------------------------------------------------


@njit(cache=True)
def _advance(si: Any, t: int) -> None:
    if si[I_STARTED] == 0:
        si[I_STARTED], si[I_T0], si[I_CLOCK] = 1, t, t
    elif t > si[I_CLOCK]:
        si[I_CLOCK] = t


@njit(cache=True)
def _l1(si: Any, bid: int, ask: int) -> None:
    si[I_BID], si[I_ASK] = bid, ask
    si[I_L1] = 1 if bid > 0 and ask > bid else 0


@njit(cache=True)
def _sign(si: Any, kind: int, side: int, p: int) -> int:
    """The aggressor: the venue's flag, the opposite of a resting order, else Lee-Ready."""
    if kind == T_EXECUTED:
        return -side
    if side != 0:
        return side
    if si[I_L1] == 1:
        if 2 * p > si[I_BID] + si[I_ASK]:
            return 1
        if 2 * p < si[I_BID] + si[I_ASK]:
            return -1
    if si[I_TRADES] > 0:
        if p > si[I_LAST_PX]:
            return 1
        if p < si[I_LAST_PX]:
            return -1
        return int(si[I_LAST_SIGN])
    return 0


@njit(cache=True)
def _in_range(si: Any, row: int) -> bool:
    return bool(si[I_BASE] <= row < si[I_BASE] + ROWS)


@njit(cache=True)
def _fp_add(si: Any, fp: Any, row: int, size: int, sign: int, scale: int) -> None:
    if _in_range(si, row) and sign != 0:
        fp[0 if sign > 0 else 1, row - si[I_BASE]] += scale * size


@njit(cache=True)
def rebuild(si: Any, ring: Any, fp: Any) -> None:
    """The volume per row from the ring's trades (after a restore or a re-centre)."""
    fp[:, :] = 0
    cap = len(ring)
    for n in range(si[I_COUNT]):
        e = ring[(si[I_HEAD] + n) % cap]
        _fp_add(si, fp, e[R_ROW], e[R_SIZE], e[R_SIGN], 1)


@njit(cache=True)
def _recentre(si: Any, ring: Any, fp: Any, row: int) -> None:
    """Put ``row`` mid-array."""
    si[I_BASE] = row - ROWS // 2
    rebuild(si, ring, fp)


@njit(cache=True)
def _pop(si: Any, ring: Any, fp: Any) -> None:
    e = ring[si[I_HEAD]]
    _fp_add(si, fp, e[R_ROW], e[R_SIZE], e[R_SIGN], -1)
    si[I_HEAD] = (si[I_HEAD] + 1) % len(ring)
    si[I_COUNT] -= 1


@njit(cache=True)
def expire(si: Any, ring: Any, fp: Any, t: int, window: int) -> None:
    """Drop the footprint's trades applied at or before ``t - window``."""
    while si[I_COUNT] > 0 and ring[si[I_HEAD], R_TS] <= t - window:
        _pop(si, ring, fp)


@njit(cache=True)
def _footprint(
    si: Any, ring: Any, fp: Any, tp: Any, cfg: Any, t: int, p: int, q: int, s: int
) -> None:
    if si[I_ROW] == 0:  # row height: fixed, or from the first trade's price
        ticks = cfg[C_ROW_TICKS]
        if ticks == 0:
            ticks = max(1, round(p * tp[P_ROW_BPS] * 1e-4 / cfg[C_TICK]))
        si[I_ROW] = ticks * cfg[C_TICK]
    row = p // si[I_ROW]
    expire(si, ring, fp, t, cfg[C_WINDOW])
    if si[I_COUNT] == len(ring):
        _pop(si, ring, fp)
    e = ring[(si[I_HEAD] + si[I_COUNT]) % len(ring)]
    e[R_TS], e[R_ROW], e[R_SIZE], e[R_SIGN] = t, row, q, s
    si[I_COUNT] += 1
    if _in_range(si, row):
        _fp_add(si, fp, row, q, s, 1)
    else:
        _recentre(si, ring, fp, row)


@njit(cache=True)
def _trade(si: Any, sf: Any, ring: Any, fp: Any, tp: Any, cfg: Any, kind: int, side: int,
           p: int, q: int) -> None:  # fmt: skip
    """A trade print: its aggressor, the run, the rates, large prints, the footprint."""
    t = si[I_CLOCK]
    s = _sign(si, kind, side, p)
    first = si[I_TRADES] == 0
    dt = 0 if first else t - si[I_T_RATE]
    sf[F_FAST] = sf[F_FAST] * math.exp(-dt / tp[P_FAST_TAU]) + 1.0
    sf[F_SLOW] = sf[F_SLOW] * math.exp(-dt / tp[P_SLOW_TAU]) + 1.0
    sf[F_FAST_SIGNED] = sf[F_FAST_SIGNED] * math.exp(-dt / tp[P_FAST_TAU]) + s * float(q)
    si[I_T_RATE] = t
    if si[I_TRADES] >= WARM_TRADES and q >= tp[P_LARGE_MULT] * sf[F_SIZE] and s != 0:
        sf[F_LARGE] = sf[F_LARGE] * math.exp(-(t - si[I_T_LARGE]) / tp[P_LARGE_TAU]) + s
        si[I_T_LARGE] = t
    sf[F_SIZE] = float(q) if first else sf[F_SIZE] + tp[P_SIZE_ALPHA] * (q - sf[F_SIZE])
    if s != 0 and s == si[I_RUN_SIGN]:
        si[I_RUN_LEN] += 1
    else:
        si[I_RUN_SIGN], si[I_RUN_LEN] = s, 1 if s != 0 else 0
    si[I_LAST_PX], si[I_LAST_T] = p, t
    if s != 0:  # a zero tick takes the last known sign
        si[I_LAST_SIGN] = s
    si[I_TRADES] += 1
    _footprint(si, ring, fp, tp, cfg, t, p, q, s)


@njit(cache=True)
def _top(si: Any, sf: Any, tp: Any, tops: Any, k: int, status: int, from_book: bool) -> None:
    """``book.top`` ``k`` (``tops``: its bid prices, bid sizes, ask prices, ask sizes, each
    n x 10): the L1 if it is the source, and the depth imbalance."""
    usable = status == BOOK_SYNCED
    if from_book:
        if usable:
            _l1(si, tops[0][k, 0], tops[2][k, 0])
        else:
            _l1(si, 0, 0)
    bid, ask = tops[1][k, :].sum(), tops[3][k, :].sum()
    if not usable or bid + ask == 0:
        si[I_IMB_ON] = 0
        sf[F_IMB] = NAN
        return
    imb = (bid - ask) / (bid + ask)
    t = si[I_CLOCK]
    if si[I_IMB_ON] == 0:
        si[I_IMB_ON], si[I_T_IMB0] = 1, t
        sf[F_IMB_EMA] = imb
    else:
        w = math.exp(-(t - si[I_T_IMB]) / tp[P_TREND_TAU])
        sf[F_IMB_EMA] = sf[F_IMB] + (sf[F_IMB_EMA] - sf[F_IMB]) * w
    sf[F_IMB], si[I_T_IMB] = imb, t


# -- measurements ------------------------------------------------------------------------------


@njit(cache=True)
def _rate(decayed: float, tau: float, span: float) -> float:
    """A decayed count as a rate per second, unbiased while less than a few tau are observed."""
    return decayed / (tau * (1.0 - math.exp(-span / tau))) * SEC


@njit(cache=True)
def _diagonal(fp: Any, side: int, j: int) -> int:
    """The other side's volume one row away: sellers below a buy row, buyers above a sell row."""
    if side == 0:
        return int(fp[1, j - 1]) if j > 0 else 0
    return int(fp[0, j + 1]) if j + 1 < ROWS else 0


@njit(cache=True)
def _stack(fp: Any, lo: int, hi: int, side: int, ratio: float, least: float) -> int:
    """Longest run of rows whose ``side`` volume beats the other side's one row diagonally
    (buyers at row r against sellers at r - 1; sellers at r against buyers at r + 1)."""
    best = run = 0
    for j in range(lo, hi + 1):
        own = fp[side, j]
        if own > 0 and own >= least and own >= ratio * _diagonal(fp, side, j):
            run += 1
            best = max(best, run)
        else:
            run = 0
    return best


@njit(cache=True)
def _measure_fp(si: Any, fp: Any, tp: Any, out: Any) -> None:
    buy = sell = 0
    lo, hi, occupied = -1, -1, 0
    for j in range(ROWS):
        v = fp[0, j] + fp[1, j]
        if v > 0:
            buy += fp[0, j]
            sell += fp[1, j]
            occupied += 1
            hi = j
            if lo < 0:
                lo = j
    out[M_FP_BUY], out[M_FP_SELL] = buy, sell
    if occupied == 0:
        return
    avg = (buy + sell) / occupied
    out[M_FP_AVG] = avg
    out[M_FP_HIGH_VOL] = fp[0, hi] + fp[1, hi]
    out[M_FP_LOW_VOL] = fp[0, lo] + fp[1, lo]
    least = tp[P_STACK_SHARE] * avg
    out[M_FP_STACK_BUY] = _stack(fp, lo, hi, 0, tp[P_STACK_RATIO], least)
    out[M_FP_STACK_SELL] = _stack(fp, lo, hi, 1, tp[P_STACK_RATIO], least)
    if si[I_L1] == 1:
        bid = si[I_BID] // si[I_ROW] - si[I_BASE]
        ask = si[I_ASK] // si[I_ROW] - si[I_BASE]
        out[M_FP_L1] = 1.0
        out[M_FP_BID_SELL] = fp[1, bid] if 0 <= bid < ROWS else 0
        out[M_FP_ASK_BUY] = fp[0, ask] if 0 <= ask < ROWS else 0
        out[M_FP_AT_HIGH] = 1.0 if bid >= hi else 0.0
        out[M_FP_AT_LOW] = 1.0 if ask <= lo else 0.0


@njit(cache=True)
def measure(si: Any, sf: Any, ring: Any, fp: Any, tp: Any, cfg: Any, t: int, out: Any) -> None:
    """What the agents need from the state at time ``t`` (after the vector's record)."""
    out[:] = NAN
    trades = si[I_TRADES]
    out[M_TRADES] = trades
    out[M_FP_COUNT] = 0.0
    span = float(t - si[I_T0])
    if trades > 0:
        since = t - si[I_LAST_T]
        out[M_SINCE_TRADE] = since / SEC
        out[M_RUN] = si[I_RUN_SIGN] * si[I_RUN_LEN] if since <= tp[P_RUN_AGE] else 0.0
        dt = t - si[I_T_RATE]
        fast_w = math.exp(-dt / tp[P_FAST_TAU])
        out[M_FAST_SIGNED] = sf[F_FAST_SIGNED] * fast_w
        out[M_ACCEL_READY] = 1.0 if span >= tp[P_FAST_TAU] else 0.0
        if span > 0:
            slow_w = math.exp(-dt / tp[P_SLOW_TAU])
            out[M_FAST] = _rate(sf[F_FAST] * fast_w, tp[P_FAST_TAU], span)
            out[M_SLOW] = _rate(sf[F_SLOW] * slow_w, tp[P_SLOW_TAU], span)
        if trades >= WARM_TRADES:
            out[M_LARGE] = sf[F_LARGE] * math.exp(-(t - si[I_T_LARGE]) / tp[P_LARGE_TAU])
        expire(si, ring, fp, t, cfg[C_WINDOW])
        out[M_FP_COUNT] = si[I_COUNT]
        if si[I_COUNT] > 0:
            _measure_fp(si, fp, tp, out)
    if si[I_IMB_ON] == 1 and t - si[I_T_IMB0] >= tp[P_TREND_TAU]:
        ema = sf[F_IMB] + (sf[F_IMB_EMA] - sf[F_IMB]) * math.exp(
            -(t - si[I_T_IMB]) / tp[P_TREND_TAU]
        )
        out[M_IMB_TREND] = sf[F_IMB] - ema


# -- the loop ----------------------------------------------------------------------------------


@njit(cache=True)
def _record(si: Any, sf: Any, ring: Any, fp: Any, tp: Any, cfg: Any, kind: int, side: int,
            price: int, size: int, price2: int, ts: int) -> None:  # fmt: skip
    _advance(si, ts)
    if kind in (T_TRADE, T_EXECUTED):
        _trade(si, sf, ring, fp, tp, cfg, kind, side, price, size)
    elif kind == T_QUOTE and cfg[C_L1_QUOTE] == 1:
        _l1(si, price, price2)


@njit(cache=True)
def run(
    offsets: Any,
    kind: Any,
    side: Any,
    price: Any,
    size: Any,
    price2: Any,
    ts: Any,
    top_offset: Any,
    top_status: Any,
    tops: Any,
    vec_cause: Any,
    vec_ts: Any,
    si: Any,
    sf: Any,
    ring: Any,
    fp: Any,
    tp: Any,
    cfg: Any,
    out: Any,
) -> None:
    """Apply records, tops and vectors merged by offset; measure the state at each vector.

    At one offset the record comes first, then the tops it caused, then the vector it caused.
    ``tops`` is the tuple (bid prices, bid sizes, ask prices, ask sizes) of the tops.
    """
    i = k = v = 0
    while i < len(offsets) or k < len(top_offset) or v < len(vec_cause):
        o_rec = offsets[i] if i < len(offsets) else BIG
        o_top = top_offset[k] if k < len(top_offset) else BIG
        o_vec = vec_cause[v] if v < len(vec_cause) else BIG
        if o_rec <= o_top and o_rec <= o_vec:
            _record(si, sf, ring, fp, tp, cfg, kind[i], side[i], price[i], size[i], price2[i],
                    ts[i])  # fmt: skip
            i += 1
        elif o_top <= o_vec:
            _top(si, sf, tp, tops, k, top_status[k], cfg[C_L1_QUOTE] == 0)
            k += 1
        else:
            _advance(si, vec_ts[v])
            measure(si, sf, ring, fp, tp, cfg, si[I_CLOCK], out[v])
            v += 1
