"""The compiled loop of the ``labels`` processor (numba, no Python objects inside).

State (numpy, so snapshot/restore is a copy):

* ``si`` (int64): the clock (``NO_TIME`` before the first timed event), the pending queue's
  head and length, and counters.
* ``sf`` (float64): the mid in effect (NaN while there is none or the book is one-sided).
* The pending queue: three parallel arrays (origin offset, origin time, mid at the origin),
  a FIFO in origin order; entries ``[head, head + length)`` are live. The caller compacts and
  grows it between calls.

Per journal offset, in order: (1) the event moves the clock (if it carries a time later than
the clock), (2) every pending origin whose horizon the clock has now passed matures, with the
mid in effect *before* this event's own book changes, (3) the event's ``book.mid`` updates are
applied, (4) its ``features.vector`` becomes a pending origin with the mid now in effect.
Nothing depends on where a slice ends, so one event and a million per call give the same bits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

NO_TIME = np.iinfo(np.int64).min
"""``ts`` of a journal event that does not move the clock (control events other than ticks)."""

I_CLOCK, I_HEAD, I_LEN, I_EMITTED, I_UNDEFINED = range(5)
N_I = 5
F_MID = 0
N_F = 1

UNDEFINED = 0x01
"""``labels.label`` flag: no two-sided mid at the origin or at the horizon."""

Array = np.ndarray[Any, Any]


def new_state() -> tuple[Array, Array]:
    """A fresh (``si``, ``sf``): no clock, no mid, nothing pending."""
    si = np.zeros(N_I, np.int64)
    si[I_CLOCK] = NO_TIME
    sf = np.full(N_F, np.nan)
    return si, sf


@njit(cache=True)
def run(
    start: int,
    event_ts: Array,
    mid_cause: Array,
    mid_two: Array,
    mid_value: Array,
    vec_cause: Array,
    vec_ts: Array,
    si: Array,
    sf: Array,
    p_origin: Array,
    p_ts: Array,
    p_mid: Array,
    horizon: int,
    threshold: float,
    o_label: Array,
    o_flags: Array,
    o_ts: Array,
    o_cause: Array,
    o_origin: Array,
    o_origin_ts: Array,
    o_start: Array,
    o_end: Array,
    o_move: Array,
) -> int:
    """Apply journal events ``start .. start + len(event_ts)``; the number of labels written.

    The caller guarantees room: the pending arrays hold ``head + length + len(vec_cause)``
    entries and the outputs ``length + len(vec_cause)`` labels.
    """
    n_out = 0
    m = 0
    v = 0
    for j in range(len(event_ts)):
        offset = start + j
        ts = event_ts[j]
        if ts > si[I_CLOCK]:
            si[I_CLOCK] = ts
        while si[I_LEN] > 0 and p_ts[si[I_HEAD]] + horizon < si[I_CLOCK]:
            h = si[I_HEAD]
            _emit(n_out, offset, si[I_CLOCK], p_origin[h], p_ts[h], p_mid[h], sf[F_MID],
                  threshold, o_label, o_flags, o_ts, o_cause, o_origin, o_origin_ts, o_start,
                  o_end, o_move)  # fmt: skip
            if o_flags[n_out] & UNDEFINED:
                si[I_UNDEFINED] += 1
            n_out += 1
            si[I_HEAD] += 1
            si[I_LEN] -= 1
            si[I_EMITTED] += 1
        while m < len(mid_cause) and mid_cause[m] <= offset:
            sf[F_MID] = mid_value[m] if mid_two[m] != 0 else math.nan
            m += 1
        while v < len(vec_cause) and vec_cause[v] <= offset:
            tail = si[I_HEAD] + si[I_LEN]
            p_origin[tail] = vec_cause[v]
            p_ts[tail] = vec_ts[v]
            p_mid[tail] = sf[F_MID]
            si[I_LEN] += 1
            v += 1
    return n_out


@njit(cache=True)
def _emit(
    i: int,
    cause: int,
    clock: int,
    origin: int,
    origin_ts: int,
    mid_start: float,
    mid_end: float,
    threshold: float,
    o_label: Array,
    o_flags: Array,
    o_ts: Array,
    o_cause: Array,
    o_origin: Array,
    o_origin_ts: Array,
    o_start: Array,
    o_end: Array,
    o_move: Array,
) -> None:
    o_cause[i], o_ts[i] = cause, clock
    o_origin[i], o_origin_ts[i] = origin, origin_ts
    o_start[i], o_end[i] = mid_start, mid_end
    if math.isnan(mid_start) or math.isnan(mid_end):
        o_label[i], o_flags[i], o_move[i] = 0, UNDEFINED, math.nan
        return
    move = math.log(mid_end / mid_start)
    o_move[i], o_flags[i] = move, 0
    if move > threshold:
        o_label[i] = 1
    elif move < -threshold:
        o_label[i] = -1
    else:
        o_label[i] = 0
