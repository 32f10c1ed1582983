"""The online model compiled: :class:`OnlineModel`'s river scaler and softmax regression, the
same floats, without river's per-event Python.

river stays the definition (:mod:`streams.models.online`); this is the model of record in the
``models`` stage because it is bit-identical to it: the same predictions and the same learnt
state after every step (``tests/unit/test_online_learner.py`` checks it on the AAPL sample's
real feature vectors and labels, and on seeded sequences with NaN features). How the kernels
replay river's order of operations is in :mod:`streams.models.learner_kernel`.

State is river's: :meth:`CompiledLearner.state` gives the :class:`OnlineState` that
:meth:`OnlineModel.state` gives for the same history (the dicts' insertion orders included),
and :meth:`CompiledLearner.load` takes any state that :meth:`OnlineModel.load` takes, so
snapshots written before the compiled learner existed resume exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streams.models import learner_kernel as k
from streams.models.online import BIAS, ONLINE_STATE_VERSION, OnlineState

Array = np.ndarray[Any, Any]


class CompiledLearner:
    """See the module docstring. ``names`` are the selected features, in order."""

    def __init__(self, names: list[str], lr: float, l2: float, clip: float) -> None:
        self.names = list(names)
        self.keys = [*self.names, BIAS]
        self._index = {name: i for i, name in enumerate(self.keys)}
        self.lr, self.l2, self.clip = float(lr), float(l2), float(clip)
        self._reset()
        self.pending_causes = np.zeros(0, np.int64)
        self.pending_values = np.zeros((0, len(self.names)), np.float64)

    def _reset(self) -> None:
        f, keys = len(self.names), len(self.keys)
        self.count = np.zeros(f, np.int64)
        self.mean = np.zeros(f, np.float64)
        self.var = np.zeros(f, np.float64)
        self.sd = np.zeros(f, np.float64)
        """``var ** 0.5`` (river computes it per use; it changes only when ``var`` does)."""
        self.s_present = np.zeros((3, f), np.bool_)
        self.s_order = np.zeros((3, f), np.int64)
        self.s_size = np.zeros(3, np.int64)
        self.w = np.zeros((3, keys), np.float64)
        self.w_present = np.zeros((3, keys), np.bool_)
        self.w_order = np.zeros((3, keys), np.int64)
        self.w_size = np.zeros(3, np.int64)
        self.classes = np.zeros(3, np.int64)
        self.meta = np.zeros(4, np.int64)

    @property
    def learned(self) -> int:
        """Labels learnt so far."""
        return int(self.meta[k.LEARNED])

    def _model(self) -> tuple[Array, Array, Array, Array, Array, Array]:
        return (self.w, self.w_present, self.w_order, self.w_size, self.classes, self.meta)

    def predict(self, values: list[float]) -> tuple[float, float, float] | None:
        """(down, flat, up) for one vector's selected features; None before any label."""
        out = np.zeros(3, np.float64)
        x = self._vector(values)
        scaler = (self.mean, self.var, self.sd, self.s_present, self.s_order, self.s_size)
        if not k.predict_one(x, *scaler, *self._model(), self.clip, out):
            return None
        return (float(out[0]), float(out[1]), float(out[2]))

    def learn(self, values: list[float], label: int) -> None:
        """Learn that the vector with these features was followed by ``label`` (-1, 0, +1)."""
        k.learn_one(self._vector(values), label + 1, self.count, self.mean, self.var,
                    self.sd, self.s_present, self.s_order, self.s_size, *self._model(), self.lr,
                    self.l2, self.clip)  # fmt: skip

    def _vector(self, values: list[float]) -> Array:
        x = np.asarray(values, np.float64)
        if x.shape != (len(self.names),):
            raise ValueError(
                f"the online model takes {len(self.names)} feature values, got shape {x.shape}"
            )
        return x

    # -- the models stage's walk over a slice ------------------------------------------------

    @property
    def pending(self) -> int:
        """Vectors whose label has not matured yet."""
        return int(self.meta[k.TAIL] - self.meta[k.HEAD])

    def oldest_pending(self) -> int | None:
        """The cause of the oldest pending vector (None when there is none)."""
        return int(self.pending_causes[self.meta[k.HEAD]]) if self.pending else None

    def pending_items(self) -> tuple[list[int], list[list[float]]]:
        """The pending vectors' causes and selected features, oldest first."""
        lo, hi = int(self.meta[k.HEAD]), int(self.meta[k.TAIL])
        causes: list[int] = self.pending_causes[lo:hi].tolist()
        values: list[list[float]] = self.pending_values[lo:hi].tolist()
        return causes, values

    def set_pending(self, causes: list[int], values: list[list[float]]) -> None:
        """Replace the pending vectors (a restored snapshot's)."""
        n = len(causes)
        self.pending_causes = np.array(causes, np.int64).reshape(n)
        self.pending_values = np.array(values, np.float64).reshape(n, len(self.names))
        self.meta[k.HEAD], self.meta[k.TAIL] = 0, n

    def _room(self, more: int) -> None:
        """Move the pending vectors to the front, with room for ``more`` after them."""
        lo, hi = int(self.meta[k.HEAD]), int(self.meta[k.TAIL])
        if hi + more <= len(self.pending_causes):
            return
        n = hi - lo
        size = max(2 * (n + more), 1024)
        causes = np.zeros(size, np.int64)
        values = np.zeros((size, len(self.names)), np.float64)
        causes[:n], values[:n] = self.pending_causes[lo:hi], self.pending_values[lo:hi]
        self.pending_causes, self.pending_values = causes, values
        self.meta[k.HEAD], self.meta[k.TAIL] = 0, n

    def run(
        self, vectors: Array, columns: Array, labels: Array, undefined: int
    ) -> tuple[Array, Array]:
        """Walk a slice's vectors and labels in cause order (labels first on a tie): each
        label teaches its origin's features, each vector is predicted, then waits for its
        label. Returns (rows, 3) probabilities and which rows were cold (before any label)."""
        n = len(vectors)
        self._room(n)
        probs = np.full((n, 3), np.nan)
        cold = np.zeros(n, np.bool_)
        k.run_slice(
            np.ascontiguousarray(vectors["cause"], np.int64),
            vectors["values"],
            columns,
            np.ascontiguousarray(labels["cause"], np.int64),
            np.ascontiguousarray(labels["origin"], np.int64),
            np.ascontiguousarray(labels["label"], np.int64),
            np.ascontiguousarray(labels["flags"], np.int64),
            undefined,
            self.count, self.mean, self.var, self.sd, self.s_present, self.s_order, self.s_size,
            *self._model(),
            self.pending_causes, self.pending_values,
            self.lr, self.l2, self.clip,
            probs, cold,
        )  # fmt: skip
        return probs, cold

    # -- state: river's format -----------------------------------------------------------------

    def state(self) -> OnlineState:
        """The learnt state, exactly as :meth:`OnlineModel.state` writes it."""

        def scaler(d: int, values: Array) -> list[Any]:
            order = self.s_order[d, : self.s_size[d]].tolist()
            return [(self.names[i], values[i].item()) for i in order]

        weights = []
        for c in self.classes[: self.meta[k.CLASSES]].tolist():
            order = self.w_order[c, : self.w_size[c]].tolist()
            weights.append((c, [(self.keys[i], float(self.w[c, i])) for i in order]))
        return OnlineState(
            ONLINE_STATE_VERSION,
            self.learned,
            scaler(k.COUNTS, self.count),
            scaler(k.MEANS, self.mean),
            scaler(k.VARS, self.var),
            weights,
        )

    def load(self, state: OnlineState) -> None:
        """Replace the learnt state with ``state`` (as :meth:`OnlineModel.load` does)."""
        if state.version != ONLINE_STATE_VERSION:
            raise ValueError(
                f"online model state version {state.version}; this build reads "
                f"{ONLINE_STATE_VERSION}"
            )
        self._reset()
        self.meta[k.LEARNED] = state.learned
        for d, items, into in (
            (k.COUNTS, state.counts, self.count),
            (k.MEANS, state.means, self.mean),
            (k.VARS, state.variances, self.var),
        ):
            for name, value in items:
                i = self._key(name, features_only=True)
                self.s_present[d, i] = True
                self.s_order[d, self.s_size[d]] = i
                self.s_size[d] += 1
                into[i] = value
        k.standard_deviations(self.var, self.sd)
        for label, pairs in state.weights:
            if label not in (0, 1, 2) or self.w_size[label] or label in self._classes():
                raise ValueError(f"online model state: unexpected class {label!r}")
            self.classes[self.meta[k.CLASSES]] = label
            self.meta[k.CLASSES] += 1
            for name, value in pairs:
                i = self._key(name, features_only=False)
                self.w_present[label, i] = True
                self.w_order[label, self.w_size[label]] = i
                self.w_size[label] += 1
                self.w[label, i] = value

    def _classes(self) -> list[int]:
        out: list[int] = self.classes[: self.meta[k.CLASSES]].tolist()
        return out

    def _key(self, name: str, features_only: bool) -> int:
        i = self._index.get(name)
        if i is None or (features_only and i == len(self.names)):
            raise ValueError(
                f"online model state names {name!r}, which is not one of the online features "
                f"{self.names}: the state was written with other online_features"
            )
        return i
