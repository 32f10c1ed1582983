"""The compiled hot loop of the ``features`` processor (numba, no Python objects inside).

All compiled code of the stage lives in this one module on purpose: numba's on-disk cache is
invalidated by the source file of the cached function only, so a helper edited in another
module would leave a stale cached caller behind. The feature table (names, formulas, docs) is
in :mod:`streams.features.schema`; a test checks the group offsets below against it.

State (all numpy, so snapshot/restore is a copy; indices are the constants below):

* ``si`` (int64) and ``sf`` (float64): the clock, the L1 state, counters, event times of the
  last updates, and the recursive decays and EMAs.
* ``bars_i`` / ``bars_f``: a ring of the last ``RING`` one-second bars, slot ``j & MASK`` for
  bar ``j`` (UTC seconds since the epoch); ``BI_ID`` says which bar a slot holds.
* ``book``: the last ``book.top`` (4 x 10: bid prices, bid sizes, ask prices, ask sizes).
* ``day``: the venue's local day the clock is in (bounds, UTC offsets, session times), set by
  the caller from the trading calendar whenever the clock leaves it.

Every event updates state in journal order and the loop carries the state between calls, so a
slice of one event and a slice of a million give identical bits (no fastmath, no
reassociation; every sum runs oldest to newest). The kernel stops early, before touching the
record it stopped at, when it needs a calendar day or more output room; the caller supplies
it and resumes at the same record.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

NAN = np.nan
BAR_NS = 1_000_000_000
DAY_NS = 86_400 * BAR_NS
RING = 64
"""Bars kept: the longest window (60 bars) plus the close before it, rounded up."""
MASK = RING - 1

BF_OPEN, BF_HIGH, BF_LOW, BF_CLOSE, BF_NOTIONAL, BF_EFF = range(6)
N_BF = 6
BI_ID, BI_VOL, BI_BUY, BI_SELL, BI_COUNT, BI_NBUY, BI_NSELL, BI_OFI, BI_NEFF = range(9)
N_BI = 9

(I_CLOCK, I_STARTED, I_T0, I_BAR, I_BAR0, I_BID, I_BIDSZ, I_ASK, I_ASKSZ, I_L1, I_L1_SEEN,
 I_TM0, I_MIDS, I_T_MID, I_T_SPR, I_T_L1CNT, I_T_TRADE, I_TRADES, I_LAST_PX, I_LAST_SIGN,
 I_NEXT_FIRE, I_BOOK, I_BOOK_STATUS, I_NEED) = range(24)  # fmt: skip
N_I = 24
(F_MID, F_E12, F_E26, F_SIG, F_SIG_HOLD, F_SPR_EMA, F_SPR_HOLD, F_TICKVAR, F_TICK_RET,
 F_SVOL, F_VOL, F_L1CNT) = range(12)  # fmt: skip
N_F = 12
(D_START, D_END, D_OFF0, D_TRANS, D_OFF1, D_WEEKDAY, D_SESSION, D_OPEN, D_CLOSE,
 D_BREAK_START, D_BREAK_END) = range(11)  # fmt: skip
N_D = 11
C_CADENCE, C_INTERVAL, C_L1_QUOTE, C_TICK = range(4)
N_C = 4

CADENCE_TRADE, CADENCE_BOOK, CADENCE_TIME = 0, 1, 2
T_CLOCK, T_TRADE, T_EXECUTED, T_QUOTE = 0, 1, 5, 7
"""Record kinds the kernel acts on (``T_CLOCK`` stands for ``clock.ticked``)."""
BOOK_SYNCED = 1
"""``book.top`` status of a usable book: synced and not stale."""
DONE, NEED_DAY, OUT_FULL = 0, 1, 2

FLAG_WARMING_UP, FLAG_NO_L1, FLAG_NO_BOOK, FLAG_NO_TRADES, FLAG_CLOSED = 1, 2, 4, 8, 16

SEC = 1e9
TAU_9, TAU_10, TAU_12, TAU_26, TAU_30 = 9 * SEC, 10 * SEC, 12 * SEC, 26 * SEC, 30 * SEC
LN2 = math.log(2.0)
TWO_PI = 2.0 * math.pi
WARM_BARS = 60
"""Bars after which every bar window is warm."""
WARM_NS = 90 * BAR_NS
"""Event time after the first two-sided L1 after which every decay is warm."""

G_VOLATILITY, G_RETURNS, G_ORDER_FLOW, G_VOLUME = 0, 10, 20, 28
G_TECHNICAL, G_MICRO, G_TEMPORAL, N_VALUES = 36, 44, 59, 65
"""Offset of each group's first value in a vector (checked against the schema by a test)."""


def new_state() -> tuple[np.ndarray[Any, Any], ...]:
    """Fresh ``(si, sf, bars_i, bars_f, book, day)`` arrays: nothing seen yet."""
    sf = np.zeros(N_F, np.float64)
    sf[F_MID] = NAN
    return (
        np.zeros(N_I, np.int64),
        sf,
        np.zeros((RING, N_BI), np.int64),
        np.full((RING, N_BF), NAN, np.float64),
        np.zeros((4, 10), np.int64),
        np.zeros(N_D, np.int64),
    )


# -- state updates -----------------------------------------------------------------------------


@njit(cache=True)
def _decay(value: float, since: int, t: int, tau: float) -> float:
    return value * math.exp(-(t - since) / tau)


@njit(cache=True)
def _init_bar(bars_i: Any, bars_f: Any, j: int, mid: float) -> None:
    s = j & MASK
    bars_i[s, :] = 0
    bars_i[s, BI_ID] = j
    bars_f[s, BF_OPEN] = mid
    bars_f[s, BF_HIGH] = mid
    bars_f[s, BF_LOW] = mid
    bars_f[s, BF_CLOSE] = mid
    bars_f[s, BF_NOTIONAL] = 0.0
    bars_f[s, BF_EFF] = 0.0


@njit(cache=True)
def _advance(si: Any, sf: Any, bars_i: Any, bars_f: Any, t: int) -> None:
    """Move the clock to ``t``, opening bars (flat at the carried mid) up to its bar."""
    b = t // BAR_NS
    if si[I_STARTED] == 0:
        si[I_STARTED], si[I_T0], si[I_BAR0], si[I_BAR] = 1, t, b, b
        _init_bar(bars_i, bars_f, b, sf[F_MID])
    elif b > si[I_BAR]:
        # Bars more than RING back are never read, so a long gap costs at most RING bars.
        for j in range(max(si[I_BAR] + 1, b - RING + 1), b + 1):
            _init_bar(bars_i, bars_f, j, sf[F_MID])
        si[I_BAR] = b
    si[I_CLOCK] = t


@njit(cache=True)
def _mid_changed(si: Any, sf: Any, bars_f: Any, m: float, t: int) -> None:
    """Advance the mid's EMAs and tick variance to ``t`` on the old mid, then take ``m``."""
    if si[I_MIDS] == 0:
        sf[F_E12] = sf[F_E26] = m
        sf[F_SIG] = sf[F_SIG_HOLD] = sf[F_TICKVAR] = 0.0
    else:
        x = sf[F_MID]
        since = si[I_T_MID]
        sf[F_E12] = x + (sf[F_E12] - x) * math.exp(-(t - since) / TAU_12)
        sf[F_E26] = x + (sf[F_E26] - x) * math.exp(-(t - since) / TAU_26)
        hold = sf[F_SIG_HOLD]
        sf[F_SIG] = hold + (sf[F_SIG] - hold) * math.exp(-(t - since) / TAU_9)
        sf[F_SIG_HOLD] = sf[F_E12] - sf[F_E26]
        r = math.log(m / x)
        sf[F_TICK_RET] = r
        sf[F_TICKVAR] = _decay(sf[F_TICKVAR], since, t, TAU_10) + r * r
    si[I_T_MID] = t
    si[I_MIDS] += 1
    sf[F_MID] = m
    s = si[I_BAR] & MASK
    bars_f[s, BF_CLOSE] = m
    if not m <= bars_f[s, BF_HIGH]:  # also when the bar's high is NaN (no mid before it)
        bars_f[s, BF_HIGH] = m
    if not m >= bars_f[s, BF_LOW]:
        bars_f[s, BF_LOW] = m


@njit(cache=True)
def _l1(si: Any, sf: Any, bars_i: Any, bars_f: Any, b: int, qb: int, a: int, qa: int) -> None:
    """A new best bid/ask state: OFI, L1 change rate, spread EMA, mid."""
    t = si[I_CLOCK]
    valid = 1 if (b > 0 and a > 0 and a > b) else 0
    was = si[I_L1]
    pb, pqb, pa, pqa = si[I_BID], si[I_BIDSZ], si[I_ASK], si[I_ASKSZ]
    if valid == 1 and was == 1:
        e = 0
        if b >= pb:
            e += qb
        if b <= pb:
            e -= pqb
        if a <= pa:
            e -= qa
        if a >= pa:
            e += pqa
        bars_i[si[I_BAR] & MASK, BI_OFI] += e
    if valid != was or b != pb or qb != pqb or a != pa or qa != pqa:
        sf[F_L1CNT] = _decay(sf[F_L1CNT], si[I_T_L1CNT], t, TAU_10) + 1.0
        si[I_T_L1CNT] = t
    si[I_BID], si[I_BIDSZ], si[I_ASK], si[I_ASKSZ], si[I_L1] = b, qb, a, qa, valid
    if valid == 0:
        return
    spread = float(a - b)
    if si[I_L1_SEEN] == 0:
        si[I_L1_SEEN], si[I_TM0] = 1, t
        sf[F_SPR_EMA] = sf[F_SPR_HOLD] = spread
        si[I_T_SPR] = t
    elif spread != sf[F_SPR_HOLD]:
        hold = sf[F_SPR_HOLD]
        sf[F_SPR_EMA] = hold + (sf[F_SPR_EMA] - hold) * math.exp(-(t - si[I_T_SPR]) / TAU_30)
        sf[F_SPR_HOLD] = spread
        si[I_T_SPR] = t
    m = (b + a) / 2.0
    if si[I_MIDS] == 0 or m != sf[F_MID]:
        _mid_changed(si, sf, bars_f, m, t)


@njit(cache=True)
def _trade(
    si: Any, sf: Any, bars_i: Any, bars_f: Any, kind: int, side: int, p: int, q: int, div: float
) -> None:
    """A trade print: its sign, the bar's flow sums, the volume decays."""
    t = si[I_CLOCK]
    if kind == T_EXECUTED:
        s = -side  # the resting order's side; the aggressor is the other one
    elif side != 0:
        s = side
    else:  # quote rule, then tick rule (Lee-Ready)
        s = 0
        if si[I_L1] == 1:
            if 2 * p > si[I_BID] + si[I_ASK]:
                s = 1
            elif 2 * p < si[I_BID] + si[I_ASK]:
                s = -1
        if s == 0 and si[I_TRADES] > 0:
            if p > si[I_LAST_PX]:
                s = 1
            elif p < si[I_LAST_PX]:
                s = -1
            else:
                s = si[I_LAST_SIGN]
    slot = si[I_BAR] & MASK
    bars_i[slot, BI_VOL] += q
    bars_i[slot, BI_COUNT] += 1
    if s > 0:
        bars_i[slot, BI_BUY] += q
        bars_i[slot, BI_NBUY] += 1
    elif s < 0:
        bars_i[slot, BI_SELL] += q
        bars_i[slot, BI_NSELL] += 1
    bars_f[slot, BF_NOTIONAL] += float(p) * float(q)
    if si[I_L1] == 1:
        m = (si[I_BID] + si[I_ASK]) / 2.0
        bars_f[slot, BF_EFF] += 2.0 * abs(p - m) / m * 1e4
        bars_i[slot, BI_NEFF] += 1
    size = q / div
    w = math.exp(-(t - si[I_T_TRADE]) / TAU_10)
    sf[F_VOL] = sf[F_VOL] * w + size
    sf[F_SVOL] = sf[F_SVOL] * w + s * size
    si[I_T_TRADE] = t
    si[I_TRADES] += 1
    si[I_LAST_PX] = p
    if s != 0:
        si[I_LAST_SIGN] = s


# -- feature groups --------------------------------------------------------------------------


@njit(cache=True)
def _price_warm(si: Any, bars_f: Any, k: int) -> bool:
    """Whether a ``k``-bar window is whole and a mid existed at its start."""
    b = si[I_BAR]
    return bool(b - si[I_BAR0] >= k and not math.isnan(bars_f[(b - k) & MASK, BF_CLOSE]))


@njit(cache=True)
def _trade_warm(si: Any, k: int) -> bool:
    return bool(si[I_BAR] - si[I_BAR0] >= k and si[I_TRADES] > 0)


@njit(cache=True)
def _returns_window(bars_f: Any, b: int, r: Any) -> None:
    """``r[i]`` = log return of bar ``b - 59 + i`` (oldest first; NaN where undefined)."""
    for i in range(WARM_BARS):
        j = b - WARM_BARS + 1 + i
        r[i] = math.log(bars_f[j & MASK, BF_CLOSE] / bars_f[(j - 1) & MASK, BF_CLOSE])


@njit(cache=True)
def _sum_sq(r: Any, k: int) -> float:
    s = 0.0
    for i in range(WARM_BARS - k, WARM_BARS):
        s += r[i] * r[i]
    return s


@njit(cache=True)
def _range_terms(bars_f: Any, b: int, k: int) -> tuple[float, float]:
    """(sum ln(H/L)^2, sum of Garman-Klass terms) over the last ``k`` bars."""
    park, gk = 0.0, 0.0
    for j in range(b - k + 1, b + 1):
        s = j & MASK
        hl = math.log(bars_f[s, BF_HIGH] / bars_f[s, BF_LOW])
        co = math.log(bars_f[s, BF_CLOSE] / bars_f[s, BF_OPEN])
        park += hl * hl
        gk += 0.5 * hl * hl - (2.0 * LN2 - 1.0) * co * co
    return park, gk


@njit(cache=True)
def _high_low(bars_f: Any, b: int, k: int) -> tuple[float, float]:
    hh, ll = bars_f[(b - k + 1) & MASK, BF_HIGH], bars_f[(b - k + 1) & MASK, BF_LOW]
    for j in range(b - k + 2, b + 1):
        hh = max(hh, bars_f[j & MASK, BF_HIGH])
        ll = min(ll, bars_f[j & MASK, BF_LOW])
    return hh, ll


@njit(cache=True)
def _volatility(si: Any, sf: Any, bars_f: Any, r: Any, out: Any) -> None:
    b, g = si[I_BAR], G_VOLATILITY
    for i, k in enumerate((5, 15, 60)):
        if _price_warm(si, bars_f, k):
            out[g + i] = 1e4 * math.sqrt(_sum_sq(r, k))
    for i, k in enumerate((15, 60)):
        if _price_warm(si, bars_f, k):
            park, gk = _range_terms(bars_f, b, k)
            out[g + 3 + i] = 1e4 * math.sqrt(park / (4.0 * LN2))
            out[g + 5 + i] = 1e4 * math.sqrt(gk)
    if _price_warm(si, bars_f, 60) and out[g + 2] != 0.0:
        out[g + 7] = out[g] / out[g + 2] * math.sqrt(12.0)
    if si[I_L1_SEEN] == 1 and si[I_CLOCK] - si[I_TM0] >= 3 * TAU_10:
        out[g + 8] = 1e4 * math.sqrt(_decay(sf[F_TICKVAR], si[I_T_MID], si[I_CLOCK], TAU_10))
    if _price_warm(si, bars_f, 60):
        hh, ll = _high_low(bars_f, b, 60)
        out[g + 9] = 1e4 * math.log(hh / ll)


@njit(cache=True)
def _returns(si: Any, sf: Any, bars_f: Any, r: Any, out: Any) -> None:
    b, g, m = si[I_BAR], G_RETURNS, sf[F_MID]
    for i, k in enumerate((1, 5, 15, 30, 60)):
        if _price_warm(si, bars_f, k):
            out[g + i] = 1e4 * math.log(m / bars_f[(b - k) & MASK, BF_CLOSE])
    if si[I_MIDS] >= 2:
        out[g + 5] = 1e4 * sf[F_TICK_RET]
    if not _price_warm(si, bars_f, 60):
        return
    rv60 = out[G_VOLATILITY + 2]  # computed just before, by _volatility
    if rv60 != 0.0:
        out[g + 6] = out[g + 1] * math.sqrt(12.0) / rv60
    s2, lag, s3, s4 = 0.0, 0.0, 0.0, 0.0
    for i in range(WARM_BARS):
        x = r[i]
        s2 += x * x
        s3 += x * x * x
        s4 += (x * x) * (x * x)
        if i > 0:
            lag += x * r[i - 1]
    if s2 != 0.0:
        out[g + 7] = lag / s2
        m2 = s2 / 60.0
        out[g + 8] = (s3 / 60.0) / (m2 * math.sqrt(m2))
        out[g + 9] = (s4 / 60.0) / (m2 * m2)


@njit(cache=True)
def _int_sum(bars_i: Any, b: int, k: int, col: int) -> int:
    s = 0
    for j in range(b - k + 1, b + 1):
        s += bars_i[j & MASK, col]
    return s


@njit(cache=True)
def _imbalance(x: int, y: int) -> float:
    return (x - y) / (x + y) if x + y != 0 else 0.0


@njit(cache=True)
def _order_flow(si: Any, sf: Any, bars_i: Any, bars_f: Any, r: Any, div: float, out: Any) -> None:
    b, g, t = si[I_BAR], G_ORDER_FLOW, si[I_CLOCK]
    for i, k in enumerate((5, 30)):
        if _price_warm(si, bars_f, k):
            out[g + i] = _int_sum(bars_i, b, k, BI_OFI) / div
    if _price_warm(si, bars_f, 5) and si[I_L1] == 1 and si[I_BIDSZ] + si[I_ASKSZ] > 0:
        out[g + 2] = _int_sum(bars_i, b, 5, BI_OFI) / ((si[I_BIDSZ] + si[I_ASKSZ]) / 2.0)
    for i, k in enumerate((5, 30)):
        if _trade_warm(si, k):
            buy, sell = _int_sum(bars_i, b, k, BI_BUY), _int_sum(bars_i, b, k, BI_SELL)
            out[g + 3 + i] = _imbalance(buy, sell)
    if _trade_warm(si, 30):
        nb, ns = _int_sum(bars_i, b, 30, BI_NBUY), _int_sum(bars_i, b, 30, BI_NSELL)
        out[g + 5] = _imbalance(nb, ns)
    if si[I_TRADES] > 0 and t - si[I_T0] >= 3 * TAU_10:
        out[g + 6] = _decay(sf[F_SVOL], si[I_T_TRADE], t, TAU_10) / 10.0
    if _trade_warm(si, 30) and _price_warm(si, bars_f, 30):
        num, den = 0.0, 0.0
        for i in range(WARM_BARS - 30, WARM_BARS):
            s = (b - WARM_BARS + 1 + i) & MASK
            flow = (bars_i[s, BI_BUY] - bars_i[s, BI_SELL]) / div
            num += 1e4 * r[i] * flow
            den += flow * flow
        if den != 0.0:
            out[g + 7] = num / den


@njit(cache=True)
def _volume(si: Any, sf: Any, bars_i: Any, bars_f: Any, div: float, out: Any) -> None:
    b, g, t, m = si[I_BAR], G_VOLUME, si[I_CLOCK], sf[F_MID]
    if _trade_warm(si, 5):
        out[g] = _int_sum(bars_i, b, 5, BI_VOL) / div
        if si[I_L1] == 1 and si[I_BIDSZ] + si[I_ASKSZ] > 0:
            vol5 = _int_sum(bars_i, b, 5, BI_VOL)
            out[g + 7] = vol5 / ((si[I_BIDSZ] + si[I_ASKSZ]) / 2.0)
    if _trade_warm(si, 30):
        vol30 = _int_sum(bars_i, b, 30, BI_VOL)
        count = _int_sum(bars_i, b, 30, BI_COUNT)
        out[g + 1] = vol30 / div
        out[g + 3] = float(count)
        if vol30 != 0:
            out[g + 2] = out[g] / out[g + 1] * 6.0
            out[g + 4] = out[g + 1] / count
            notional = 0.0
            for j in range(b - 29, b + 1):
                notional += bars_f[j & MASK, BF_NOTIONAL]
            vwap = notional / vol30
            out[g + 5] = 1e4 * (m - vwap) / vwap
    if si[I_TRADES] > 0 and t - si[I_T0] >= 3 * TAU_10:
        out[g + 6] = _decay(sf[F_VOL], si[I_T_TRADE], t, TAU_10) / 10.0


@njit(cache=True)
def _technical(si: Any, sf: Any, bars_f: Any, r: Any, out: Any) -> None:
    b, g, t, m = si[I_BAR], G_TECHNICAL, si[I_CLOCK], sf[F_MID]
    seen = si[I_L1_SEEN] == 1
    if seen:
        x, since = sf[F_MID], si[I_T_MID]
        e12 = x + (sf[F_E12] - x) * math.exp(-(t - since) / TAU_12)
        e26 = x + (sf[F_E26] - x) * math.exp(-(t - since) / TAU_26)
        hold = sf[F_SIG_HOLD]
        sig = hold + (sf[F_SIG] - hold) * math.exp(-(t - since) / TAU_9)
        if t - si[I_TM0] >= 3 * TAU_26:
            out[g] = 1e4 * (e12 - e26) / m
            out[g + 1] = 1e4 * sig / m
            out[g + 2] = out[g] - out[g + 1]
        if t - si[I_TM0] >= 3 * TAU_12:
            out[g + 6] = 1e4 * (m - e12) / e12
    if _price_warm(si, bars_f, 14):
        up, total = 0.0, 0.0
        for i in range(WARM_BARS - 14, WARM_BARS):
            up += max(r[i], 0.0)
            total += abs(r[i])
        out[g + 3] = 100.0 * up / total if total != 0.0 else 50.0
    if _price_warm(si, bars_f, 20):
        mu, var = 0.0, 0.0
        for j in range(b - 19, b + 1):
            mu += bars_f[j & MASK, BF_CLOSE]
        mu = mu / 20.0
        for j in range(b - 19, b + 1):
            d = bars_f[j & MASK, BF_CLOSE] - mu
            var += d * d
        sd = math.sqrt(var / 20.0)
        out[g + 4] = (m - (mu - 2.0 * sd)) / (4.0 * sd) if sd != 0.0 else 0.5
        out[g + 5] = 1e4 * 4.0 * sd / mu
    if _price_warm(si, bars_f, 60):
        hh, ll = _high_low(bars_f, b, 60)
        out[g + 7] = 100.0 * (m - ll) / (hh - ll) if hh != ll else 50.0


@njit(cache=True)
def _book_side(book: Any, px: int, sz: int, m: float, div: float, out: Any, i: int) -> None:
    """Depth (base units) and slope (base units per bps) of one side of the last top."""
    n, depth = 0, 0
    for k in range(10):
        if book[px, k] > 0:
            n += 1
            depth += book[sz, k]
    out[i] = depth / div
    if n >= 2:
        out[i + 2] = (depth / div) / (1e4 * abs(book[px, 0] - book[px, n - 1]) / m)


@njit(cache=True)
def _micro(
    si: Any, sf: Any, bars_i: Any, bars_f: Any, book: Any, tick: float, div: float, out: Any
) -> None:
    b, g, t, m = si[I_BAR], G_MICRO, si[I_CLOCK], sf[F_MID]
    if si[I_L1] == 1:
        bid, qb, ask, qa = si[I_BID], si[I_BIDSZ], si[I_ASK], si[I_ASKSZ]
        out[g] = 1e4 * (ask - bid) / m
        out[g + 1] = (ask - bid) / tick
        if qb + qa > 0:
            micro = (float(bid) * float(qa) + float(ask) * float(qb)) / float(qb + qa)
            out[g + 2] = 1e4 * (micro - m) / m
        out[g + 10] = qb / div
        out[g + 11] = qa / div
        if t - si[I_TM0] >= 3 * TAU_30:
            hold = sf[F_SPR_HOLD]
            ema = hold + (sf[F_SPR_EMA] - hold) * math.exp(-(t - si[I_T_SPR]) / TAU_30)
            out[g + 14] = (ask - bid) / ema
    if si[I_BOOK] == 1 and si[I_BOOK_STATUS] == BOOK_SYNCED:
        for i, n in enumerate((1, 5, 10)):
            bids, asks = 0, 0
            for k in range(n):
                bids += book[1, k]
                asks += book[3, k]
            if bids + asks > 0:
                out[g + 3 + i] = (bids - asks) / (bids + asks)
        _book_side(book, 0, 1, m, div, out, g + 6)
        _book_side(book, 2, 3, m, div, out, g + 7)
    if _trade_warm(si, 30):
        eff, n_eff = 0.0, 0
        for j in range(b - 29, b + 1):
            eff += bars_f[j & MASK, BF_EFF]
            n_eff += bars_i[j & MASK, BI_NEFF]
        if n_eff > 0:
            out[g + 12] = eff / n_eff
    if t - si[I_T0] >= 3 * TAU_10:
        out[g + 13] = _decay(sf[F_L1CNT], si[I_T_L1CNT], t, TAU_10) / 10.0


@njit(cache=True)
def _temporal(t: int, day: Any, out: Any) -> bool:
    """The six temporal values; returns whether ``t`` is inside trading hours."""
    g = G_TEMPORAL
    off = day[D_OFF0] if t < day[D_TRANS] else day[D_OFF1]
    sod = ((t + off) % DAY_NS) / 1e9
    out[g + 2] = math.sin(TWO_PI * sod / 86400.0)
    out[g + 3] = math.cos(TWO_PI * sod / 86400.0)
    out[g + 4] = float(day[D_WEEKDAY])
    trading = False
    if day[D_SESSION] == 1:
        out[g] = (t - day[D_OPEN]) / 1e9
        out[g + 1] = (day[D_CLOSE] - t) / 60e9
        trading = day[D_OPEN] <= t < day[D_CLOSE]
        if day[D_BREAK_START] <= t < day[D_BREAK_END]:
            trading = False
    out[g + 5] = 1.0 if trading else 0.0
    return trading


# -- the loop --------------------------------------------------------------------------------


@njit(cache=True)
def compute(
    si: Any,
    sf: Any,
    bars_i: Any,
    bars_f: Any,
    book: Any,
    day: Any,
    cfg: Any,
    div: float,
    r: Any,
    out: Any,
) -> int:
    """Write every feature (NaN where undefined) into ``out``; return the vector's flags."""
    out[:] = NAN
    _returns_window(bars_f, si[I_BAR], r)
    _volatility(si, sf, bars_f, r, out)
    _returns(si, sf, bars_f, r, out)
    _order_flow(si, sf, bars_i, bars_f, r, div, out)
    _volume(si, sf, bars_i, bars_f, div, out)
    _technical(si, sf, bars_f, r, out)
    _micro(si, sf, bars_i, bars_f, book, float(cfg[C_TICK]), div, out)
    trading = _temporal(si[I_CLOCK], day, out)
    flags = 0
    warm = si[I_BAR] - si[I_BAR0] >= WARM_BARS and si[I_L1_SEEN] == 1
    if not (warm and si[I_CLOCK] - si[I_TM0] >= WARM_NS):
        flags |= FLAG_WARMING_UP
    if si[I_L1] == 0:
        flags |= FLAG_NO_L1
    if not (si[I_BOOK] == 1 and si[I_BOOK_STATUS] == BOOK_SYNCED):
        flags |= FLAG_NO_BOOK
    if si[I_TRADES] == 0:
        flags |= FLAG_NO_TRADES
    if not trading:
        flags |= FLAG_CLOSED
    return flags


@njit(cache=True)
def _top(
    si: Any,
    sf: Any,
    bars_i: Any,
    bars_f: Any,
    book: Any,
    tops: Any,
    k: int,
    status: int,
    from_book: bool,
) -> None:
    """Take ``book.top`` number ``k`` (tops: 4 x n x 10 levels) as the book (and the L1)."""
    for side in range(4):
        book[side, :] = tops[side, k, :]
    si[I_BOOK], si[I_BOOK_STATUS] = 1, status
    if from_book:
        if status == BOOK_SYNCED:
            _l1(si, sf, bars_i, bars_f, book[0, 0], book[1, 0], book[2, 0], book[3, 0])
        else:
            _l1(si, sf, bars_i, bars_f, 0, 0, 0, 0)


@njit(cache=True)
def run(
    offsets: Any,
    kind: Any,
    side: Any,
    price: Any,
    size: Any,
    price2: Any,
    size2: Any,
    ts: Any,
    top_offset: Any,
    top_status: Any,
    tops: Any,
    i: int,
    k: int,
    si: Any,
    sf: Any,
    bars_i: Any,
    bars_f: Any,
    book: Any,
    day: Any,
    cfg: Any,
    div: float,
    out_vals: Any,
    out_meta: Any,
    n_out: int,
) -> tuple[int, int, int, int]:
    """Apply records ``i..`` (and ``book.top`` ``k..``); emit vectors at the cadence.

    ``out_meta`` rows are (ts_event, cause, flags). Returns (n_out, i, k, status): status
    ``NEED_DAY`` asks for the calendar day of the clock value ``si[I_NEED]``, ``OUT_FULL`` for
    an empty output buffer; either way record ``i`` is untouched and the call can resume.
    """
    r = np.empty(WARM_BARS, np.float64)
    from_book = cfg[C_L1_QUOTE] == 0
    while i < len(offsets):
        if n_out == len(out_vals):
            return n_out, i, k, OUT_FULL
        t = max(si[I_CLOCK], ts[i]) if si[I_STARTED] == 1 else ts[i]
        if t < day[D_START] or t >= day[D_END]:
            si[I_NEED] = t
            return n_out, i, k, NEED_DAY
        _advance(si, sf, bars_i, bars_f, t)
        traded = kind[i] == T_TRADE or kind[i] == T_EXECUTED
        if traded:
            _trade(si, sf, bars_i, bars_f, kind[i], side[i], price[i], size[i], div)
        elif kind[i] == T_QUOTE and not from_book:
            _l1(si, sf, bars_i, bars_f, price[i], size[i], price2[i], size2[i])
        topped = False
        while k < len(top_offset) and top_offset[k] <= offsets[i]:
            _top(si, sf, bars_i, bars_f, book, tops, k, top_status[k], from_book)
            topped = True
            k += 1
        cadence = cfg[C_CADENCE]
        fire = (cadence == CADENCE_TRADE and traded) or (cadence == CADENCE_BOOK and topped)
        if cadence == CADENCE_TIME and t >= si[I_NEXT_FIRE]:
            fire = True
            si[I_NEXT_FIRE] = (t // cfg[C_INTERVAL] + 1) * cfg[C_INTERVAL]
        if fire:
            flags = compute(si, sf, bars_i, bars_f, book, day, cfg, div, r, out_vals[n_out])
            out_meta[n_out, 0], out_meta[n_out, 1], out_meta[n_out, 2] = t, offsets[i], flags
            n_out += 1
        i += 1
    return n_out, i, k, DONE
