"""The online model: river's ``StandardScaler`` then ``SoftmaxRegression`` (plain SGD).

It predicts on every feature vector and learns from each label as it matures. The two river
steps are composed here rather than with ``river.compose.Pipeline`` so that what learns when is
explicit: the scaler and the weights learn only in :meth:`OnlineModel.learn` (a matured label
with the features of its origin); a prediction changes nothing.

Inputs to river are dicts, so:

* NaN features are dropped from the dict: the scaler's statistics and the weight of a feature
  only ever see real values, and a missing feature contributes nothing to the logits (the same
  as its mean after scaling). A NaN would otherwise poison the running mean forever.
* Scaled values are clipped to +-``clip``: early on a variance estimated from a few samples
  can be tiny and one outlier would throw a weight far off.
* A constant ``bias`` input of 1.0 is added after scaling: river's softmax regression has no
  intercept, and without one the model could not learn the classes' base rates.
* Classes are the ints 0, 1, 2 (down, flat, up): river builds a set of class labels when it
  computes the gradient, and ints hash the same in every process (strings would not).

State: an explicit, versioned format of ours (:class:`OnlineState`), restored only through
river's public surface: ``StandardScaler._from_state`` (river's documented way to resume a
scaler from a checkpoint) and ``SoftmaxRegression.weights`` (a documented attribute); nothing
else of river's is written. river iterates dicts in insertion order, and floating-point sums
depend on that order, so every dict is kept as an ordered list of pairs and restored in that
order: a restored model continues bit-identically. The optimizer's step count is not kept: the
learning rate is a constant, so it changes nothing (version 1 kept it; version 2 does not).
A frozen state sample in ``tests/data`` is reloaded by the tests, so a river upgrade that
changed what these names mean fails there, not in a replay.
"""

from __future__ import annotations

import collections
import math
from typing import Any

import msgspec
import numpy as np
from river import linear_model, optim, preprocessing

ONLINE_STATE_VERSION = 2
BIAS = "bias"


class OnlineState(msgspec.Struct, array_like=True):
    """Everything the online model has learnt, in river's dict orders."""

    version: int
    learned: int
    """Labels learnt so far."""
    counts: list[tuple[str, int]]
    """The scaler's observations per feature."""
    means: list[tuple[str, float]]
    variances: list[tuple[str, float]]
    weights: list[tuple[int, list[tuple[str, float]]]]
    """Per class, in river's order: each feature's weight, in insertion order."""


class OnlineModel:
    """See the module docstring."""

    def __init__(self, names: list[str], lr: float, l2: float, clip: float) -> None:
        self.names = names
        self.lr, self.l2, self.clip = lr, l2, clip
        self._reset()

    def _reset(self) -> None:
        self.learned = 0
        self.scaler = preprocessing.StandardScaler()
        self.model = self._softmax()

    def _softmax(self) -> linear_model.SoftmaxRegression:
        # a constant learning rate: the optimizer's step count changes nothing (not kept)
        return linear_model.SoftmaxRegression(optimizer=optim.SGD(self.lr), l2=self.l2)

    def _features(self, values: list[float]) -> dict[str, float]:
        return {n: v for n, v in zip(self.names, values, strict=True) if not math.isnan(v)}

    def _scaled(self, x: dict[str, float]) -> dict[str, float]:
        clip = self.clip
        z = {k: min(clip, max(-clip, v)) for k, v in self.scaler.transform_one(x).items()}
        z[BIAS] = 1.0
        return z

    def predict(self, values: list[float]) -> tuple[float, float, float] | None:
        """(down, flat, up) for one vector's selected features; None before any label."""
        if self.learned == 0:
            return None
        proba = self.model.predict_proba_one(self._scaled(self._features(values)))
        return (proba.get(0, 0.0), proba.get(1, 0.0), proba.get(2, 0.0))

    def learn(self, values: list[float], label: int) -> None:
        """Learn that the vector with these features was followed by ``label`` (-1, 0, +1)."""
        x = self._features(values)
        self.scaler.learn_one(x)
        self.model.learn_one(self._scaled(x), label + 1)
        self.learned += 1

    def state(self) -> OnlineState:
        """The learnt state, in order (see the module docstring)."""
        s = self.scaler
        return OnlineState(
            ONLINE_STATE_VERSION,
            self.learned,
            list(s.counts.items()),
            list(s.means.items()),
            list(s.vars.items()),
            [(c, list(w.items())) for c, w in self.model.weights.items()],
        )

    def load(self, state: OnlineState) -> None:
        """Replace the learnt state with ``state``, through river's public surface only."""
        if state.version != ONLINE_STATE_VERSION:
            raise ValueError(
                f"online model state version {state.version}; this build reads "
                f"{ONLINE_STATE_VERSION}"
            )
        self.learned = state.learned
        self.scaler = preprocessing.StandardScaler._from_state(
            counts=dict(state.counts), means=dict(state.means), vars=dict(state.variances)
        )
        self.model = self._softmax()
        for label, weights in state.weights:
            self.model.weights[label] = collections.defaultdict(float, weights)


def selected(values: np.ndarray[Any, Any], columns: list[int]) -> list[float]:
    """One vector's selected features as plain floats (what :class:`OnlineModel` takes)."""
    out: list[float] = values[columns].tolist()
    return out
