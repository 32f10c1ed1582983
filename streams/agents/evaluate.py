"""The four agents' rules, compiled: features and tape measurements in, votes out.

Each agent has directional rules and modifiers (the table with every bit, its name and meaning is
:mod:`streams.agents.rules`, rendered into docs/agents.md). A directional rule has a signed
strength ``z``: its input divided by its threshold, so it *fires* when ``|z| >= 1``, bit ``up``
for ``z > 0`` and ``down`` for ``z < 0``. A fired rule adds ``sign(z) * min(|z|, 2) / 2`` to the
agent's evidence ``E`` (between 0.5 at the threshold and 1 at twice it). Then

    vote = sign(E)          (0 when no rule fired or they cancel exactly)
    confidence = min(1, |E| / full_evidence * m)   (0 when the vote is 0)

where ``m`` is the product of the factors of the modifiers that fired (1 when none). A rule whose
input is missing (NaN: warming up, no trades, no book) is skipped; when every directional rule
of an agent is skipped it sets ``NO_DATA`` and votes 0 with confidence 0, which the consensus
reads as "this agent has no opinion" (its weight goes to the other agents).

All compiled code of this module stays in this module (numba's cache is per source file). The
bit values and the input/parameter layouts are constants here; :mod:`streams.agents.rules`
names and documents them and a test checks the two agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

FEATURE_INPUTS = (
    "trade_imbalance_5s",
    "trade_imbalance_30s",
    "trade_count_imbalance_30s",
    "ofi_depth_ratio_5s",
    "volume_ratio_5s_30s",
    "depth_imbalance_1",
    "depth_imbalance_5",
    "book_slope_bid",
    "book_slope_ask",
    "spread_ema_ratio_30s",
    "vwap_deviation_30s",
    "realized_vol_15s",
)
"""The features the agents read, in the order of the ``fi`` index array."""

# Constants of other modules, repeated: numba's cache follows this file only, so a compiled
# function must not bake in another module's globals. A test checks that the copies agree.
(M_TRADES, M_SINCE_TRADE, M_RUN, M_LARGE, M_FAST, M_SLOW, M_FAST_SIGNED, M_ACCEL_READY,
 M_FP_COUNT, M_FP_BUY, M_FP_SELL, M_FP_AVG, M_FP_BID_SELL, M_FP_ASK_BUY, M_FP_AT_HIGH,
 M_FP_AT_LOW, M_FP_HIGH_VOL, M_FP_LOW_VOL, M_FP_STACK_BUY, M_FP_STACK_SELL, M_FP_L1,
 M_IMB_TREND) = range(22)  # fmt: skip
"""Columns of the measurements ``streams.agents.tape.measure`` writes."""
F_NO_BOOK, F_NO_TRADES = 0x04, 0x08
"""``features.vector`` flags (``engine.events.features``)."""
(X_TI5, X_TI30, X_TCI30, X_OFI, X_VRATIO, X_DI1, X_DI5, X_SLOPE_BID, X_SLOPE_ASK, X_SPREAD_EMA,
 X_VWAP, X_VOL15) = range(12)  # fmt: skip

# thresholds (float64 array ``q``), filled from the config by ``streams.agents.config``
(Q_FULL, Q_AGGRESSOR, Q_OFI, Q_PERSISTENT, Q_INTENSE, Q_QUIET, Q_DEPTH, Q_TOUCH, Q_SLOPE,
 Q_TREND, Q_WIDE, Q_RUN, Q_LARGE_NET, Q_ACCEL, Q_VWAP_VOL, Q_STALE, Q_DELTA, Q_ABSORB,
 Q_EXHAUST, Q_STACK, Q_DIVERGENCE, Q_MIN_TRADES) = range(22)  # fmt: skip
N_Q = 22

INTENSE_FACTOR = 1.25
"""Confidence factor when the tape is busier than usual (order flow ``intense``)."""
DAMP_FACTOR = 0.5
"""Confidence factor of every damping modifier (quiet, wide spread, stale tape, thin window)."""

A_ORDER_FLOW, A_LIQUIDITY, A_TAPE_READING, A_FOOTPRINT = range(4)
DIRECTIONAL_RULES = (3, 4, 4, 5)
"""Directional rules per agent (a rule with an up and a down bit counts once)."""

NO_DATA = 1 << 0
"""Bit 0 of every agent: no directional rule could be evaluated; vote 0, confidence 0."""

OF_NO_TRADES, OF_AGGRESSIVE_BUYING, OF_AGGRESSIVE_SELLING = 1 << 1, 1 << 2, 1 << 3
OF_OFI_BID, OF_OFI_ASK, OF_PERSISTENT_BUYING, OF_PERSISTENT_SELLING = 1 << 4, 1 << 5, 1 << 6, 1 << 7
OF_INTENSE, OF_QUIET = 1 << 8, 1 << 9

LQ_NO_BOOK, LQ_BID_HEAVY, LQ_ASK_HEAVY, LQ_TOUCH_BID, LQ_TOUCH_ASK = (
    1 << 1,
    1 << 2,
    1 << 3,
    1 << 4,
    1 << 5,
)
LQ_THIN_ASK, LQ_THIN_BID, LQ_BID_BUILDING, LQ_ASK_BUILDING = 1 << 6, 1 << 7, 1 << 8, 1 << 9
LQ_WIDE_SPREAD = 1 << 10

TR_NO_TRADES, TR_RUN_BUYING, TR_RUN_SELLING, TR_LARGE_BUYING = 1 << 1, 1 << 2, 1 << 3, 1 << 4
TR_LARGE_SELLING, TR_ACCEL_BUYING, TR_ACCEL_SELLING, TR_ABOVE_VWAP = 1 << 5, 1 << 6, 1 << 7, 1 << 8
TR_BELOW_VWAP, TR_STALE = 1 << 9, 1 << 10

FP_NO_TRADES, FP_DELTA_BUYING, FP_DELTA_SELLING, FP_ABSORPTION_BID = 1 << 1, 1 << 2, 1 << 3, 1 << 4
FP_ABSORPTION_ASK, FP_EXHAUSTION_LOW, FP_EXHAUSTION_HIGH = 1 << 5, 1 << 6, 1 << 7
FP_STACKED_BUYING, FP_STACKED_SELLING, FP_DIVERGENCE_LOW = 1 << 8, 1 << 9, 1 << 10
FP_DIVERGENCE_HIGH, FP_THIN_WINDOW = 1 << 11, 1 << 12


@njit(cache=True)
def _rule(z: float, evidence: float, bits: int, up: int, down: int) -> tuple[float, int]:
    """Add a directional rule of strength ``z`` (``|z| >= 1`` fires) to the evidence."""
    if z >= 1.0:
        return evidence + min(z, 2.0) / 2.0, bits | up
    if z <= -1.0:
        return evidence - min(-z, 2.0) / 2.0, bits | down
    return evidence, bits


@njit(cache=True)
def _finish(
    evidence: float, seen: int, bits: int, factor: float, full: float
) -> tuple[int, float, int]:
    """(vote, confidence, bits) from the evidence, the rules seen and the modifiers' factor."""
    if seen == 0:
        return 0, 0.0, bits | NO_DATA
    if evidence == 0.0:
        return 0, 0.0, bits
    vote = 1 if evidence > 0.0 else -1
    return vote, min(1.0, abs(evidence) / full * factor), bits


@njit(cache=True)
def order_flow(x: Any, flags: int, q: Any) -> tuple[int, float, int]:
    """Aggressor imbalance (5 s), order-flow imbalance (5 s, in L1 depths), persistent
    aggressor imbalance (30 s, trade counts agreeing); trade intensity scales confidence."""
    e, seen, bits, factor = 0.0, 0, 0, 1.0
    if flags & F_NO_TRADES:
        bits |= OF_NO_TRADES
    if not math.isnan(x[X_TI5]):
        seen += 1
        e, bits = _rule(x[X_TI5] / q[Q_AGGRESSOR], e, bits, OF_AGGRESSIVE_BUYING,
                        OF_AGGRESSIVE_SELLING)  # fmt: skip
    if not math.isnan(x[X_OFI]):
        seen += 1
        e, bits = _rule(x[X_OFI] / q[Q_OFI], e, bits, OF_OFI_BID, OF_OFI_ASK)
    if not math.isnan(x[X_TI30]) and not math.isnan(x[X_TCI30]):
        seen += 1
        agree = x[X_TI30] * x[X_TCI30] > 0.0
        z = x[X_TI30] / q[Q_PERSISTENT] if agree else 0.0
        e, bits = _rule(z, e, bits, OF_PERSISTENT_BUYING, OF_PERSISTENT_SELLING)
    if not math.isnan(x[X_TI30]):  # the 30 s window is warm: intensity can be judged
        ratio = x[X_VRATIO]
        if ratio >= q[Q_INTENSE]:
            bits, factor = bits | OF_INTENSE, INTENSE_FACTOR
        elif math.isnan(ratio) or ratio <= q[Q_QUIET]:  # NaN: no trade in the 30 s window
            bits, factor = bits | OF_QUIET, DAMP_FACTOR
    return _finish(e, seen, bits, factor, q[Q_FULL])


@njit(cache=True)
def liquidity(x: Any, meas: Any, flags: int, q: Any) -> tuple[int, float, int]:
    """Depth imbalance (5 levels), pressure at the touch (level 1), the thin side (book slopes)
    and depth building on one side (imbalance against its EMA); a wide spread damps."""
    e, seen, bits, factor = 0.0, 0, 0, 1.0
    if flags & F_NO_BOOK:
        bits |= LQ_NO_BOOK
    if not math.isnan(x[X_DI5]):
        seen += 1
        e, bits = _rule(x[X_DI5] / q[Q_DEPTH], e, bits, LQ_BID_HEAVY, LQ_ASK_HEAVY)
    if not math.isnan(x[X_DI1]):
        seen += 1
        e, bits = _rule(x[X_DI1] / q[Q_TOUCH], e, bits, LQ_TOUCH_BID, LQ_TOUCH_ASK)
    bid, ask = x[X_SLOPE_BID], x[X_SLOPE_ASK]
    if bid > 0.0 and ask > 0.0:  # False for NaN
        seen += 1
        z = math.log(bid / ask) / math.log(q[Q_SLOPE])
        e, bits = _rule(z, e, bits, LQ_THIN_ASK, LQ_THIN_BID)
    if not math.isnan(meas[M_IMB_TREND]):
        seen += 1
        z = meas[M_IMB_TREND] / q[Q_TREND]
        e, bits = _rule(z, e, bits, LQ_BID_BUILDING, LQ_ASK_BUILDING)
    if x[X_SPREAD_EMA] >= q[Q_WIDE]:
        bits, factor = bits | LQ_WIDE_SPREAD, DAMP_FACTOR
    return _finish(e, seen, bits, factor, q[Q_FULL])


@njit(cache=True)
def tape_reading(x: Any, meas: Any, q: Any) -> tuple[int, float, int]:
    """Runs of same-side trades, large prints, an accelerating tape and price against VWAP;
    a stale tape damps."""
    e, seen, bits, factor = 0.0, 0, 0, 1.0
    if meas[M_TRADES] == 0:
        bits |= TR_NO_TRADES
    else:
        seen += 1
        e, bits = _rule(meas[M_RUN] / q[Q_RUN], e, bits, TR_RUN_BUYING, TR_RUN_SELLING)
        if meas[M_SINCE_TRADE] > q[Q_STALE]:
            bits, factor = bits | TR_STALE, DAMP_FACTOR
    if not math.isnan(meas[M_LARGE]):
        seen += 1
        z = meas[M_LARGE] / q[Q_LARGE_NET]
        e, bits = _rule(z, e, bits, TR_LARGE_BUYING, TR_LARGE_SELLING)
    if meas[M_ACCEL_READY] == 1.0 and meas[M_SLOW] > 0.0:
        seen += 1
        ratio = meas[M_FAST] / meas[M_SLOW] / q[Q_ACCEL]
        flow = meas[M_FAST_SIGNED]
        z = ratio if flow > 0.0 else -ratio if flow < 0.0 else 0.0
        e, bits = _rule(z, e, bits, TR_ACCEL_BUYING, TR_ACCEL_SELLING)
    if x[X_VOL15] > 0.0 and not math.isnan(x[X_VWAP]):
        seen += 1
        z = x[X_VWAP] / (q[Q_VWAP_VOL] * x[X_VOL15])
        e, bits = _rule(z, e, bits, TR_ABOVE_VWAP, TR_BELOW_VWAP)
    return _finish(e, seen, bits, factor, q[Q_FULL])


@njit(cache=True)
def footprint(meas: Any, q: Any) -> tuple[int, float, int]:
    """Delta, absorption, exhaustion, stacked imbalances and delta divergence over the
    footprint window; a window with few trades damps."""
    e, seen, bits, factor = 0.0, 0, 0, 1.0
    if meas[M_TRADES] == 0:
        bits |= FP_NO_TRADES
    buy, sell = meas[M_FP_BUY], meas[M_FP_SELL]
    if meas[M_FP_COUNT] == 0 or buy + sell == 0:
        return _finish(e, seen, bits, factor, q[Q_FULL])
    seen += 2
    delta = (buy - sell) / (buy + sell)
    e, bits = _rule(delta / q[Q_DELTA], e, bits, FP_DELTA_BUYING, FP_DELTA_SELLING)
    avg = meas[M_FP_AVG]
    up, down = meas[M_FP_STACK_BUY] / q[Q_STACK], -meas[M_FP_STACK_SELL] / q[Q_STACK]
    e, bits = _rule(up, e, bits, FP_STACKED_BUYING, 0)
    e, bits = _rule(down, e, bits, 0, FP_STACKED_SELLING)
    if meas[M_FP_L1] == 1.0:
        seen += 3
        unit = q[Q_ABSORB] * avg
        e, bits = _rule(meas[M_FP_BID_SELL] / unit, e, bits, FP_ABSORPTION_BID, 0)
        e, bits = _rule(-meas[M_FP_ASK_BUY] / unit, e, bits, 0, FP_ABSORPTION_ASK)
        thin = q[Q_EXHAUST] * avg
        if meas[M_FP_AT_LOW] == 1.0:
            e, bits = _rule(thin / meas[M_FP_LOW_VOL], e, bits, FP_EXHAUSTION_LOW, 0)
            z = max(delta / q[Q_DIVERGENCE], 0.0)  # buyers in control at the low
            e, bits = _rule(z, e, bits, FP_DIVERGENCE_LOW, 0)
        if meas[M_FP_AT_HIGH] == 1.0:
            e, bits = _rule(-thin / meas[M_FP_HIGH_VOL], e, bits, 0, FP_EXHAUSTION_HIGH)
            z = min(delta / q[Q_DIVERGENCE], 0.0)  # sellers in control at the high
            e, bits = _rule(z, e, bits, 0, FP_DIVERGENCE_HIGH)
    if meas[M_FP_COUNT] < q[Q_MIN_TRADES]:
        bits, factor = bits | FP_THIN_WINDOW, DAMP_FACTOR
    return _finish(e, seen, bits, factor, q[Q_FULL])


@njit(cache=True)
def evaluate(
    values: Any, flags: Any, meas: Any, fi: Any, q: Any, votes: Any, conf: Any, reasons: Any
) -> None:
    """Every agent's vote, confidence and reasons for each vector (row) of ``values``."""
    x = np.empty(len(fi), np.float64)
    for n in range(len(values)):
        for j in range(len(fi)):
            x[j] = values[n, fi[j]]
        f = flags[n]
        results = (
            order_flow(x, f, q),
            liquidity(x, meas[n], f, q),
            tape_reading(x, meas[n], q),
            footprint(meas[n], q),
        )
        for a in range(4):
            votes[n, a], conf[n, a], reasons[n, a] = results[a]
