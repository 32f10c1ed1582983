"""The compiled loop of the ``consensus`` processor: decide per vector, learn per label.

Vectors and labels are merged by journal offset; at one offset the labels come first (a label
maturing at offset ``c`` is known after event ``c``, and so is the vector caused by ``c``).

State (numpy; indices are the constants below):

* ``acc`` (float64, 6): each contributor's accuracy estimate, an EWMA of its scored calls.
* ``si`` (int64): the pending queue's head and length, and counters.
* ``origin`` (int64, capacity) and ``calls`` (int8, capacity x 6): the pending queue, one entry
  per decided vector not yet labelled: its cause and each contributor's vote (0: no call).

All compiled code of the stage lives in this module (numba's cache is per source file).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

N = 6
"""Contributors: meta, online, then the four agents (``CONTRIBUTORS``)."""
MODELS = 2
"""The first ``MODELS`` contributors are the models, the rest the agents."""
NAN = np.nan
BIG = np.iinfo(np.int64).max

I_HEAD, I_COUNT, I_LABELS, I_SCORED, I_UNDEFINED, I_UNLABELLED, I_UNMATCHED, I_OVERFLOW = range(8)
I_CALLS = 8
"""``si[I_CALLS + i]``: scored calls of contributor ``i``."""
N_I = I_CALLS + N
P_MODEL, P_AGENT, P_DEAD_BAND, P_ALPHA, P_FLOOR, P_ADAPT = range(6)
N_P = 6
"""Parameters (float64 ``p``): group weights, dead band, EWMA step, accuracy floor, adapt mode;
followed by the six within-group shares at ``N_P``."""
ADAPT_NONE, ADAPT_WITHIN, ADAPT_ALL = 0, 1, 2
# Bits of other modules' events, repeated (numba's cache follows this file only; a test
# checks the copies): labels.label undefined, agents' no_data, features and decision warm-up.
L_UNDEFINED = 0x01
NO_DATA = 0x01
"""Bit 0 of every agent's reasons: the agent had no data (``streams.agents.evaluate``)."""
WARMING_UP, D_WARMING_UP = 0x01, 0x01
"""The features vector's warming-up flag, and the decision's."""


@njit(cache=True)
def _model_call(p: Any) -> tuple[int, float]:
    """A probability triple's vote (strict argmax; ties stay flat) and its probability."""
    down, flat, up = p[0], p[1], p[2]
    if up > down and up > flat:
        return 1, up
    if down > up and down > flat:
        return -1, down
    return 0, flat


@njit(cache=True)
def learn(si: Any, acc: Any, origin: Any, calls: Any, o: int, label: int, flags: int,
          alpha: float) -> None:  # fmt: skip
    """Score the calls made at vector ``o`` against its label; drop older unlabelled ones."""
    cap = len(origin)
    si[I_LABELS] += 1
    while si[I_COUNT] > 0 and origin[si[I_HEAD]] < o:
        si[I_HEAD], si[I_COUNT] = (si[I_HEAD] + 1) % cap, si[I_COUNT] - 1
        si[I_UNLABELLED] += 1
    if si[I_COUNT] == 0 or origin[si[I_HEAD]] != o:
        si[I_UNMATCHED] += 1
        return
    if flags & L_UNDEFINED:
        si[I_UNDEFINED] += 1
    else:
        si[I_SCORED] += 1
        for i in range(N):
            call = calls[si[I_HEAD], i]
            if call != 0:
                hit = 1.0 if call == label else 0.0
                acc[i] = acc[i] + alpha * (hit - acc[i])
                si[I_CALLS + i] += 1
    si[I_HEAD], si[I_COUNT] = (si[I_HEAD] + 1) % cap, si[I_COUNT] - 1


@njit(cache=True)
def weights(acc: Any, ok: Any, p: Any, out: Any) -> None:
    """Each available contributor's weight: base share x accuracy within its group, groups at
    their configured split (or adapted too), renormalised over what is available."""
    adapt = int(p[P_ADAPT])
    raw = np.zeros(N, np.float64)
    group_raw = np.zeros(2, np.float64)
    group_share = np.zeros(2, np.float64)
    for i in range(N):
        if ok[i]:
            g = 0 if i < MODELS else 1
            f = max(acc[i], p[P_FLOOR]) if adapt != ADAPT_NONE else 1.0
            raw[i] = p[N_P + i] * f
            group_raw[g] += raw[i]
            group_share[g] += p[N_P + i]
    split = np.zeros(2, np.float64)
    for g in range(2):
        if group_raw[g] > 0.0:
            split[g] = p[P_MODEL + g]
            if adapt == ADAPT_ALL:
                split[g] *= group_raw[g] / group_share[g]
    total = split[0] + split[1]
    out[:] = 0.0
    if total == 0.0:
        return
    for i in range(N):
        g = 0 if i < MODELS else 1
        if raw[i] > 0.0:
            out[i] = split[g] / total * raw[i] / group_raw[g]


@njit(cache=True)
def decide(
    probs: Any, votes: Any, conf: Any, reasons: Any, vflags: int, acc: Any, p: Any,
    out_votes: Any, out_conf: Any, out_w: Any,
) -> tuple[int, int, float, float, float, float]:  # fmt: skip
    """(direction, flags, confidence, score, model score, agent score) for one vector.

    ``probs``: the meta and online triples (NaN: absent); ``votes``, ``conf``, ``reasons``: the
    agents' (an agent with ``NO_DATA`` in its reasons is absent)."""
    avail = np.zeros(N, np.bool_)
    for k in range(MODELS):
        triple = probs[k]
        if not (math.isnan(triple[0]) or math.isnan(triple[1]) or math.isnan(triple[2])):
            avail[k] = True
            out_votes[k], out_conf[k] = _model_call(triple)
        else:
            out_votes[k], out_conf[k] = 0, NAN
    for a in range(N - MODELS):
        i = MODELS + a
        avail[i] = (reasons[a] & NO_DATA) == 0
        out_votes[i] = votes[a] if avail[i] else 0
        out_conf[i] = conf[a] if avail[i] else NAN
    weights(acc, avail, p, out_w)
    parts = np.zeros(2, np.float64)
    mass = np.zeros(2, np.float64)
    for i in range(N):
        if out_w[i] > 0.0:
            g = 0 if i < MODELS else 1
            parts[g] += out_w[i] * out_votes[i] * out_conf[i]
            mass[g] += out_w[i]
    score = parts[0] + parts[1]
    direction = 0
    if abs(score) > p[P_DEAD_BAND]:
        direction = 1 if score > 0.0 else -1
    flags = 0
    if vflags & WARMING_UP:
        flags |= D_WARMING_UP
        direction = 0
    confidence = abs(score) if direction != 0 else 0.0
    model = parts[0] / mass[0] if mass[0] > 0.0 else NAN
    agent = parts[1] / mass[1] if mass[1] > 0.0 else NAN
    return direction, flags, confidence, score, model, agent


@njit(cache=True)
def _remember(si: Any, origin: Any, calls: Any, cause: int, votes: Any) -> None:
    cap = len(origin)
    if si[I_COUNT] == cap:  # the oldest call is dropped unscored
        si[I_HEAD], si[I_COUNT] = (si[I_HEAD] + 1) % cap, si[I_COUNT] - 1
        si[I_OVERFLOW] += 1
    slot = (si[I_HEAD] + si[I_COUNT]) % cap
    origin[slot] = cause
    calls[slot, :] = votes
    si[I_COUNT] += 1


@njit(cache=True)
def unmatched(vec_cause: Any, rec_cause: Any) -> int:
    """The first record cause that is no vector's (or repeats one), else -1."""
    v = 0
    for r in range(len(rec_cause)):
        while v < len(vec_cause) and vec_cause[v] < rec_cause[r]:
            v += 1
        if v == len(vec_cause) or vec_cause[v] != rec_cause[r]:
            return int(rec_cause[r])
        v += 1
    return -1


@njit(cache=True)
def run(
    vec_cause: Any, vec_flags: Any,
    p_cause: Any, p_meta: Any, p_online: Any,
    a_cause: Any, a_votes: Any, a_conf: Any, a_reasons: Any,
    lab_cause: Any, lab_origin: Any, lab_label: Any, lab_flags: Any,
    si: Any, acc: Any, origin: Any, calls: Any, p: Any,
    o_dir: Any, o_flags: Any, o_conf: Any, o_score: Any, o_model: Any, o_agent: Any,
    o_votes: Any, o_confs: Any, o_w: Any,
) -> None:  # fmt: skip
    """Labels and vectors merged by offset (labels first at one offset): learn from each
    label, decide each vector with its prediction and votes (matched by cause; absent when
    missing) and queue its calls until its label matures."""
    probs = np.empty((MODELS, 3), np.float64)
    votes = np.zeros(N - MODELS, np.int64)
    conf = np.zeros(N - MODELS, np.float64)
    reasons = np.zeros(N - MODELS, np.int64)
    j = ip = ia = 0
    for v in range(len(vec_cause)):
        c = vec_cause[v]
        while j < len(lab_cause) and lab_cause[j] <= c:
            learn(si, acc, origin, calls, lab_origin[j], lab_label[j], lab_flags[j], p[P_ALPHA])
            j += 1
        probs[:, :] = NAN
        if ip < len(p_cause) and p_cause[ip] == c:
            probs[0, :], probs[1, :] = p_meta[ip], p_online[ip]
            ip += 1
        reasons[:] = NO_DATA
        if ia < len(a_cause) and a_cause[ia] == c:
            votes[:], conf[:], reasons[:] = a_votes[ia], a_conf[ia], a_reasons[ia]
            ia += 1
        r = decide(probs, votes, conf, reasons, vec_flags[v], acc, p, o_votes[v], o_confs[v],
                   o_w[v])  # fmt: skip
        o_dir[v], o_flags[v], o_conf[v], o_score[v], o_model[v], o_agent[v] = r
        _remember(si, origin, calls, c, o_votes[v])
    while j < len(lab_cause):
        learn(si, acc, origin, calls, lab_origin[j], lab_label[j], lab_flags[j], p[P_ALPHA])
        j += 1
