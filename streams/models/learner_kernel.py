"""Compiled loops of the online learner (:mod:`streams.models.learner`): river's
``StandardScaler`` + ``SoftmaxRegression`` (plain SGD, cross-entropy) replayed operation by
operation, so that every float comes out bit-identical to river's.

What "the same operations" means here, read from river 0.26.1 and CPython 3.11:

* river's dicts become arrays indexed by key (feature ``0 .. F-1``, the bias ``F``; classes
  ``0 .. 2``) plus, per dict, the order in which its keys were inserted. Sums run in that
  order, because river's do: ``utils.math.dot`` iterates the shorter of the two dicts (the
  weights in their insertion order, or the scaled input in its order), the softmax total runs
  over the classes in the weights' insertion order. Keys are inserted exactly when river's
  ``defaultdict`` / ``Counter`` would insert them (``transform_one`` inserts a never-learnt
  feature into ``vars``; a step inserts a weight; ``weights[label]`` inserts a class).
* ``sum(generator)`` on CPython 3.11 adds floats one after the other into a double that starts
  at 0 (CPython 3.12 changed ``sum`` to compensated summation: the equivalence test catches it).
* ``v ** 0.5`` and ``math.exp`` call the C library's ``pow`` and ``exp``; the kernels call the
  same two symbols (declared as external functions, so LLVM neither folds nor rewrites them, as
  it may with its own intrinsics, e.g. ``pow(x, 0.5)`` -> ``sqrt``).
* ``min``/``max`` keep their first argument unless the other compares strictly smaller/larger,
  which decides where a NaN ends up; the clamps below are written the same way.

Labels arrive as classes ``label + 1`` (0 down, 1 flat, 2 up); the gradient visits the classes
of ``{*y_pred, y_true}`` in ascending order, which is how CPython iterates a set of the small
ints 0, 1, 2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, types

Array = np.ndarray[Any, Any]

_pow: Any = types.ExternalFunction("pow", types.float64(types.float64, types.float64))
_exp: Any = types.ExternalFunction("exp", types.float64(types.float64))

PROBA_MIN = 1e-15
PROBA_MAX = 1 - 1e-15
"""river's ``clamp_proba`` bounds."""

# meta slots (one int64 array keeps the learner's scalars)
LEARNED, CLASSES, HEAD, TAIL = 0, 1, 2, 3
# scaler dicts, in the order river's StandardScaler holds them
COUNTS, MEANS, VARS = 0, 1, 2


@njit(cache=True, inline="always")
def _insert(present: Array, order: Array, sizes: Array, d: int, key: int) -> None:
    """Insert ``key`` into dict ``d`` (if it is not there yet) at the end of its order."""
    if not present[d, key]:
        present[d, key] = True
        order[d, sizes[d]] = key
        sizes[d] += 1


@njit(cache=True, inline="always")
def _scaled(
    x: Array,
    keys: Array,
    z: Array,
    zin: Array,
    mean: Array,
    var: Array,
    sd: Array,
    s_present: Array,
    s_order: Array,
    s_size: Array,
    clip: float,
) -> int:
    """``_scaled(_features(values))`` of :class:`OnlineModel`: the non-NaN features scaled by
    the running statistics, clipped, then the bias. Writes the keys in order to ``keys``, the
    values by key to ``z`` (``zin`` marks the keys present); returns how many keys."""
    f = x.shape[0]
    n = 0
    for i in range(f + 1):
        zin[i] = False
    for i in range(f):
        xi = x[i]
        if math.isnan(xi):
            continue
        _insert(s_present, s_order, s_size, VARS, i)  # vars_[i]
        v = var[i]
        if v != 0.0 or math.isnan(v):  # `if v`: NaN is truthy
            _insert(s_present, s_order, s_size, MEANS, i)  # means[i]
            value = (xi - mean[i]) / sd[i]  # v ** 0.5, kept since var[i] last changed
        else:
            value = 0.0
        low = -clip  # max(-clip, value)
        if value > low:
            low = value
        high = clip  # min(clip, low)
        if low < high:
            high = low
        keys[n] = i
        z[i] = high
        zin[i] = True
        n += 1
    keys[n] = f
    z[f] = 1.0
    zin[f] = True
    return n + 1


@njit(cache=True, inline="always")
def _proba(
    keys: Array,
    nkeys: int,
    z: Array,
    zin: Array,
    w: Array,
    w_present: Array,
    w_order: Array,
    w_size: Array,
    classes: Array,
    nclasses: int,
    out: Array,
) -> None:
    """``predict_proba_one``: the softmax of each class's ``dot``, in the classes' order;
    ``out[c]`` for each class present (the others are left alone)."""
    if nclasses == 0:
        return
    for ci in range(nclasses):
        c = classes[ci]
        total = 0.0
        if w_size[c] < nkeys:  # dot(weights, x): the weights are the shorter
            for j in range(w_size[c]):
                k = w_order[c, j]
                if zin[k]:
                    total += w[c, k] * z[k]
        else:
            for j in range(nkeys):
                k = keys[j]
                if w_present[c, k]:
                    total += w[c, k] * z[k]
        out[c] = total
    top = out[classes[0]]
    for ci in range(1, nclasses):
        if out[classes[ci]] > top:
            top = out[classes[ci]]
    total = 0.0
    for ci in range(nclasses):
        c = classes[ci]
        out[c] = _exp(out[c] - top)
        total += out[c]
    for ci in range(nclasses):
        out[classes[ci]] /= total


@njit(cache=True, inline="always")
def _learn(
    x: Array,
    y: int,
    count: Array,
    mean: Array,
    var: Array,
    sd: Array,
    s_present: Array,
    s_order: Array,
    s_size: Array,
    w: Array,
    w_present: Array,
    w_order: Array,
    w_size: Array,
    classes: Array,
    meta: Array,
    lr: float,
    l2: float,
    clip: float,
    keys: Array,
    z: Array,
    zin: Array,
    proba: Array,
) -> None:
    """``OnlineModel.learn``: the scaler learns ``x``, then the regression learns class ``y``
    from the scaled ``x``."""
    for i in range(x.shape[0]):
        xi = x[i]
        if math.isnan(xi):
            continue
        _insert(s_present, s_order, s_size, COUNTS, i)
        count[i] += 1
        _insert(s_present, s_order, s_size, MEANS, i)
        old = mean[i]
        mean[i] = old + (xi - old) / count[i]
        _insert(s_present, s_order, s_size, VARS, i)
        var[i] = var[i] + ((xi - old) * (xi - mean[i]) - var[i]) / count[i]
        sd[i] = _pow(var[i], 0.5)
    nkeys = _scaled(x, keys, z, zin, mean, var, sd, s_present, s_order, s_size, clip)
    nclasses = meta[CLASSES]
    has = np.zeros(3, np.bool_)
    for ci in range(nclasses):
        has[classes[ci]] = True
    _proba(keys, nkeys, z, zin, w, w_present, w_order, w_size, classes, nclasses, proba)
    for label in range(3):  # {*y_pred, y_true} iterates the small ints in ascending order
        if not has[label] and label != y:
            continue
        p = proba[label] if has[label] else 0.0  # y_pred.get(label, 0.0)
        clamped = p  # max(min(p, PROBA_MAX), PROBA_MIN)
        if clamped > PROBA_MAX:
            clamped = PROBA_MAX
        if clamped < PROBA_MIN:
            clamped = PROBA_MIN
        loss = 1.0 * (clamped - (1.0 if label == y else 0.0))
        if not has[label]:  # self.weights[label] inserts the class
            classes[meta[CLASSES]] = label
            meta[CLASSES] += 1
        for j in range(nkeys):
            k = keys[j]
            old_w = w[label, k] if w_present[label, k] else 0.0
            g = z[k] * loss + l2 * old_w
            if not w_present[label, k]:
                w_present[label, k] = True
                w_order[label, w_size[label]] = k
                w_size[label] += 1
            w[label, k] = w[label, k] - lr * g
    meta[LEARNED] += 1


@njit(cache=True)
def standard_deviations(var: Array, sd: Array) -> None:
    """``sd[i] = var[i] ** 0.5`` with the C library's ``pow``, as river computes it (a
    restored state's; learning keeps ``sd`` current from then on)."""
    for i in range(var.shape[0]):
        sd[i] = _pow(var[i], 0.5)


@njit(cache=True)
def predict_one(
    x: Array,
    mean: Array,
    var: Array,
    sd: Array,
    s_present: Array,
    s_order: Array,
    s_size: Array,
    w: Array,
    w_present: Array,
    w_order: Array,
    w_size: Array,
    classes: Array,
    meta: Array,
    clip: float,
    out: Array,
) -> bool:
    """(down, flat, up) of one vector's selected features into ``out`` (a class never learnt:
    0.0); False (``out`` untouched) before any label."""
    if meta[LEARNED] == 0:
        return False
    f = x.shape[0]
    keys = np.empty(f + 1, np.int64)
    z = np.empty(f + 1, np.float64)
    zin = np.empty(f + 1, np.bool_)
    nkeys = _scaled(x, keys, z, zin, mean, var, sd, s_present, s_order, s_size, clip)
    proba = np.zeros(3, np.float64)
    _proba(keys, nkeys, z, zin, w, w_present, w_order, w_size, classes, meta[CLASSES], proba)
    out[:] = proba
    return True


@njit(cache=True)
def learn_one(
    x: Array,
    y: int,
    count: Array,
    mean: Array,
    var: Array,
    sd: Array,
    s_present: Array,
    s_order: Array,
    s_size: Array,
    w: Array,
    w_present: Array,
    w_order: Array,
    w_size: Array,
    classes: Array,
    meta: Array,
    lr: float,
    l2: float,
    clip: float,
) -> None:
    """Learn class ``y`` (0 down, 1 flat, 2 up) from one vector's selected features."""
    f = x.shape[0]
    keys = np.empty(f + 1, np.int64)
    z = np.empty(f + 1, np.float64)
    zin = np.empty(f + 1, np.bool_)
    proba = np.zeros(3, np.float64)
    _learn(x, y, count, mean, var, sd, s_present, s_order, s_size, w, w_present, w_order,
           w_size, classes, meta, lr, l2, clip, keys, z, zin, proba)  # fmt: skip


@njit(cache=True)
def run_slice(
    vec_causes: Array,
    vec_values: Array,
    columns: Array,
    lab_causes: Array,
    lab_origins: Array,
    lab_labels: Array,
    lab_flags: Array,
    undefined: int,
    count: Array,
    mean: Array,
    var: Array,
    sd: Array,
    s_present: Array,
    s_order: Array,
    s_size: Array,
    w: Array,
    w_present: Array,
    w_order: Array,
    w_size: Array,
    classes: Array,
    meta: Array,
    pending_causes: Array,
    pending_values: Array,
    lr: float,
    l2: float,
    clip: float,
    probs: Array,
    cold: Array,
) -> None:
    """The models stage's online walk over one slice (``ModelsStage._online``): vectors and
    labels in cause order, labels first on a tie; each vector predicted (``probs`` row, or
    ``cold``) and queued as pending; each label pops the pending vectors up to its origin and,
    unless undefined, teaches the model the origin's features. The pending queue is
    ``pending_*[meta[HEAD]:meta[TAIL]]``; the caller leaves room for every vector of the slice."""
    f = columns.shape[0]
    keys = np.empty(f + 1, np.int64)
    z = np.empty(f + 1, np.float64)
    zin = np.empty(f + 1, np.bool_)
    proba = np.zeros(3, np.float64)
    j = 0
    nlabels = lab_causes.shape[0]
    for i in range(vec_causes.shape[0] + 1):
        last = i == vec_causes.shape[0]
        while j < nlabels and (last or lab_causes[j] <= vec_causes[i]):
            origin = lab_origins[j]
            while meta[HEAD] < meta[TAIL] and pending_causes[meta[HEAD]] < origin:
                meta[HEAD] += 1  # a vector whose label was never emitted
            if meta[HEAD] < meta[TAIL] and pending_causes[meta[HEAD]] == origin:
                row = meta[HEAD]
                meta[HEAD] += 1
                if not lab_flags[j] & undefined:
                    _learn(pending_values[row], lab_labels[j] + 1, count, mean, var, sd, s_present,
                           s_order, s_size, w, w_present, w_order, w_size, classes, meta, lr, l2,
                           clip, keys, z, zin, proba)  # fmt: skip
            j += 1
        if last:
            break
        row = meta[TAIL]
        for k in range(f):
            pending_values[row, k] = vec_values[i, columns[k]]
        pending_causes[row] = vec_causes[i]
        meta[TAIL] += 1
        if meta[LEARNED] == 0:
            cold[i] = True
            continue
        nkeys = _scaled(pending_values[row], keys, z, zin, mean, var, sd, s_present, s_order,
                        s_size, clip)  # fmt: skip
        for c in range(3):
            proba[c] = 0.0
        _proba(keys, nkeys, z, zin, w, w_present, w_order, w_size, classes, meta[CLASSES], proba)
        for c in range(3):
            probs[i, c] = proba[c]
