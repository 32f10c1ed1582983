"""The ``models`` processor: the models' probabilities after every feature vector.

Inputs
    Port ``features`` (``features.vector``): one prediction each. Port ``labels``
    (``labels.label``): each matured label teaches the online model the features of its origin.
    Journal control events ``model.promoted``: the promoted bundle takes effect at that offset.
Outputs
    Port ``predictions``: ``model.prediction`` records, one per vector, with its cause and time.
    ``context``, ``micro`` and ``meta`` come from the CatBoost bundle in effect (NaN and flag
    ``P_NO_BUNDLE`` without one; with other base roles than ``context`` and ``micro``, those
    two fields are NaN and only ``meta`` is filled), ``online`` from the river model (NaN and
    ``P_ONLINE_COLD`` until it has learnt a label). ``probs`` is ``meta`` with a bundle, else
    ``online``; ``direction`` its argmax (ties to the first of down, flat, up) and
    ``confidence`` that probability; with neither, NaN, direction 0 and ``P_NO_MODEL``.
    ``P_IN_SAMPLE`` marks a vector before the bundle's ``in_sample_until`` (its training cut
    plus the embargo). Port ``switches``: ``model.switched`` whenever a bundle takes effect
    (the configured one at the run's first event, walk-forward folds, promotions).
State
    The online model (river scaler statistics, weights, counts), the features of vectors
    whose labels have not matured yet, and the bundle plan (:mod:`streams.models.schedule`):
    what is in effect and what is still to come.
Guarantees
    Deterministic and batch-independent. Per journal offset, labels maturing at it are learnt
    before the vector it causes is predicted (a label is known once it matures; its outcome
    lies before that event, so this never leaks the future). A bundle takes effect at a
    journal offset (a fold's first test vector, a promotion's own offset): vectors caused
    there or later use it, whatever the slicing. CatBoost models are evaluated by a compiled
    loop (:mod:`streams.models.trees`), bit-identical to CatBoost's raw values and the same
    for one row or a batch, once per stretch of vectors under one bundle. The bundles' bytes
    come verified by hash from :meth:`StageContext.model`; the stage does no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import numpy as np

from engine.events import by_name
from engine.events.control import InstrumentSpec, ModelPromoted
from engine.events.decisions import (
    CLASSES,
    L_UNDEFINED,
    P_IN_SAMPLE,
    P_NO_BUNDLE,
    P_NO_MODEL,
    P_ONLINE_COLD,
    PREDICTION,
    new_records,
)
from engine.events.models import ModelSwitched
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import ConfigError, Stage, typed_config
from streams.features import INDEX
from streams.models.learner import CompiledLearner
from streams.models.online import OnlineState
from streams.models.schedule import Entry, InEffect, Schedule

PREDICTIONS_PORT = Port("predictions", PREDICTION)
SWITCHES_PORT = Port("switches", by_name("model.switched"))
STATE_VERSION = 2
SHOWN_BASES = ("context", "micro")
"""Base roles with a field of their own in ``model.prediction``."""
FULL_HASH = re.compile(r"^[0-9a-f]{64}$")

ONLINE_FEATURES = (
    "return_1s",
    "return_5s",
    "return_last_tick",
    "realized_vol_15s",
    "ofi_depth_ratio_5s",
    "trade_imbalance_5s",
    "trade_imbalance_30s",
    "microprice_deviation_bps",
    "depth_imbalance_1",
    "depth_imbalance_5",
    "spread_bps",
    "macd_hist_bps",
    "bollinger_pctb_20s",
    "ema_deviation_12s",
)
"""The online model's default inputs: scale-free, fast-moving features of every group but
temporal. Its cost is linear in their number (docs/models.md has the measurements)."""


@dataclass(frozen=True)
class ModelsConfig:
    """Settings of the ``models`` processor."""

    bundle: str = ""
    """Full sha256 of a model bundle or walk-forward card (``tape train`` prints it); empty:
    no CatBoost models (until a ``model.promoted`` event names one)."""
    online: bool = True
    """Run the online (river) model."""
    online_features: tuple[str, ...] = ONLINE_FEATURES
    online_lr: float = 0.02
    """SGD learning rate of the online softmax regression."""
    online_l2: float = 0.0
    online_clip: float = 5.0
    """Scaled inputs are clipped to +-this."""


def _validated(config: ModelsConfig) -> ModelsConfig:
    if config.bundle and not FULL_HASH.match(config.bundle):
        raise ConfigError(
            f"stage 'models': bundle must be a full sha256 (64 lowercase hex digits) or empty, "
            f"got {config.bundle!r}; `tape run --bundle PREFIX` expands a prefix"
        )
    unknown = [n for n in config.online_features if n not in INDEX]
    if unknown or not config.online_features:
        raise ConfigError(
            f"stage 'models': online_features must name features of docs/features.md; "
            f"unknown: {unknown or 'none given'}"
        )
    for key in ("online_lr", "online_clip"):
        value = getattr(config, key)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"stage 'models': {key} must be a finite number > 0, got {value}")
    if not (math.isfinite(config.online_l2) and config.online_l2 >= 0):
        raise ConfigError(f"stage 'models': online_l2 must be >= 0, got {config.online_l2}")
    return config


class _State(msgspec.Struct, array_like=True):
    version: int
    config: tuple[str, bool, list[str], float, float, float]
    online: OnlineState
    pending_causes: list[int]
    pending_values: list[list[float]]
    predicted: int
    plan: list[Entry]
    announced: int


class Stretch(NamedTuple):
    """Vectors caused from ``offset`` on (to the next stretch) are under ``effect``; the
    ``model.switched`` that began it (None for the one in effect at a slice's start)."""

    offset: int
    effect: InEffect
    switched: ModelSwitched | None


class ModelsStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config = _validated(typed_config(ModelsConfig, "models", context.config))
        c = self.config
        self.schedule = Schedule(context.session, context.model, c.bundle)
        self.columns = np.array([INDEX[n] for n in c.online_features], np.int64)
        self.online = CompiledLearner(
            list(c.online_features), c.online_lr, c.online_l2, c.online_clip
        )
        """river's model, compiled (bit-identical to :class:`OnlineModel`); it also keeps the
        (cause, selected features) of vectors whose label has not matured."""
        self.predicted = 0
        self._empty = PREDICTIONS_PORT.empty()
        self.identity = (c.bundle, c.online, list(c.online_features), c.online_lr, c.online_l2,
                         c.online_clip)  # fmt: skip

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """One prediction per vector of the slice; the slice's labels are learnt in order, and
        the bundles due in it take effect at their offsets."""
        vectors, labels = piece.inputs["features"], piece.inputs["labels"]
        assert isinstance(vectors, np.ndarray)
        assert isinstance(labels, np.ndarray)
        stretches = self._stretches(piece)
        switches: list[msgspec.Struct] = [s.switched for s in stretches if s.switched]
        if len(vectors) == 0 and len(labels) == 0:
            return (self._empty, switches)
        out = new_records(PREDICTION, len(vectors))
        if len(vectors) == 0:
            if self.config.online:
                self.online.run(vectors, self.columns, labels, L_UNDEFINED)
            return (out, switches)
        out["ts_event"], out["cause"] = vectors["ts_event"], vectors["cause"]
        flags: np.ndarray[Any, Any] = np.zeros(len(vectors), np.uint16)
        bundled = self._bundles(out, vectors, flags, stretches)
        online = self._online(vectors, labels, flags)
        out["online"] = online
        probs = np.where(bundled[:, None], out["meta"], online)
        self._decide(out, probs, flags)
        self.predicted += len(vectors)
        return (out, switches)

    def _stretches(self, piece: Slice) -> list[Stretch]:
        """The bundle in effect at the slice's start, then one stretch per change in it."""
        out = [Stretch(piece.start, self.schedule.current, None)]
        promotions = [
            (piece.start + j, e)
            for j, e in enumerate(piece.control)
            if isinstance(e, ModelPromoted)
        ]
        while True:
            due = self.schedule.due(piece.stop)
            planned = (max(due[0].offset, piece.start), due[0]) if due else None
            if planned is None and not promotions:
                return out
            if planned is not None and (not promotions or planned[0] <= promotions[0][0]):
                offset, entry = planned
            else:
                offset, event = promotions.pop(0)
                entry = self.schedule.promote(event.bundle, offset)
            switched = self.schedule.switch(entry, offset, _time_at(piece, offset))
            out.append(Stretch(offset, self.schedule.current, switched))

    def _bundles(
        self,
        out: np.ndarray[Any, Any],
        vectors: np.ndarray[Any, Any],
        flags: np.ndarray[Any, Any],
        stretches: list[Stretch],
    ) -> np.ndarray[Any, Any]:
        """Fill the bundle's fields of each stretch of vectors under one bundle; which rows
        had a bundle."""
        causes = vectors["cause"].astype(np.int64)
        bounds = [int(np.searchsorted(causes, s.offset)) for s in stretches[1:]]
        bundled = np.zeros(len(vectors), bool)
        for stretch, lo, hi in zip(stretches, [0, *bounds], [*bounds, len(vectors)], strict=True):
            effect = stretch.effect
            if lo == hi:
                continue
            if effect.ensemble is None:
                flags[lo:hi] |= P_NO_BUNDLE
                for role in ("context", "micro", "meta"):
                    out[role][lo:hi] = np.nan
                continue
            probs = effect.ensemble.predict(vectors["values"][lo:hi])
            for role in ("context", "micro", "meta"):
                out[role][lo:hi] = probs.get(role, np.nan)
            flags[lo:hi] |= np.where(
                vectors["ts_event"][lo:hi] < effect.in_sample_until, P_IN_SAMPLE, 0
            ).astype(np.uint16)
            bundled[lo:hi] = True
        return bundled

    def _online(
        self,
        vectors: np.ndarray[Any, Any],
        labels: np.ndarray[Any, Any],
        flags: np.ndarray[Any, Any],
    ) -> np.ndarray[Any, Any]:
        """Walk vectors and labels in cause order (labels first on a tie); online probs.

        Each label teaches the features of its origin (vectors whose label was never emitted
        are dropped on the way; undefined labels teach nothing); the compiled walk is
        :func:`streams.models.learner_kernel.run_slice`."""
        if not self.config.online:
            flags |= P_ONLINE_COLD
            return np.full((len(vectors), 3), np.nan)
        probs, cold = self.online.run(vectors, self.columns, labels, L_UNDEFINED)
        flags[cold] |= P_ONLINE_COLD
        return probs

    @staticmethod
    def _decide(
        out: np.ndarray[Any, Any], probs: np.ndarray[Any, Any], flags: np.ndarray[Any, Any]
    ) -> None:
        missing = np.isnan(probs).any(axis=1)
        best = np.argmax(np.where(np.isnan(probs), -1.0, probs), axis=1)
        out["probs"] = probs
        out["direction"] = np.where(missing, 0, np.array(CLASSES, np.int8)[best])
        out["confidence"] = np.where(missing, np.nan, probs[np.arange(len(probs)), best])
        out["flags"] = flags | np.where(missing, P_NO_MODEL, 0).astype(np.uint16)

    def snapshot(self) -> bytes:
        """The online model's state and the pending origins' features (floats exactly)."""
        plan, announced = self.schedule.state()
        causes, values = self.online.pending_items()
        state = _State(
            STATE_VERSION,
            self.identity,
            self.online.state(),
            causes,
            values,
            self.predicted,
            plan,
            announced,
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("models", state, _State, STATE_VERSION, self.identity)
        if len(s.pending_causes) != len(s.pending_values):
            raise ValueError("models state: pending causes and values differ in length")
        self.online.load(s.online)
        self.online.set_pending(s.pending_causes, s.pending_values)
        self.predicted = s.predicted
        self.schedule.restore(s.plan, s.announced)

    def inspect(self) -> dict[str, Any]:
        """The bundle, the online model's progress and the pending origins."""
        entry = self.schedule.current.entry
        return {
            "bundle": self.config.bundle or None,
            "bundle_in_effect": entry.bundle or None,
            "in_effect_since": entry.offset,
            "in_effect_by": entry.source,
            "fold": entry.fold,
            "predictions": self.predicted,
            "online_labels_learnt": self.online.learned,
            "online_features": len(self.columns),
            "pending_origins": self.online.pending,
            "oldest_pending_origin": self.online.oldest_pending(),
        }


def _defaults(_: InstrumentSpec) -> dict[str, Any]:
    c = ModelsConfig()
    return {
        "bundle": c.bundle,
        "online": c.online,
        "online_features": list(c.online_features),
        "online_lr": c.online_lr,
        "online_l2": c.online_l2,
        "online_clip": c.online_clip,
    }


def _time_at(piece: Slice, offset: int) -> int:
    """Event time of the journal event at ``offset`` (inside the slice; 0 for a slice that
    carries no journal events, as in unit tests)."""
    at = offset - piece.start
    if piece.market is not None and at < len(piece.market):
        return int(piece.market["ts_event"][at])
    if at < len(piece.control):
        return int(getattr(piece.control[at], "ts_event", 0))
    return 0


MODELS_STAGE = Stage(
    "models",
    ModelsStage,
    (PREDICTIONS_PORT, SWITCHES_PORT),
    inputs=("features", "labels"),
    defaults=_defaults,
    doc="CatBoost base and meta-learner probabilities from the bundle in effect (configured, "
    "walk-forward folds, promotions), and an online river model that learns as labels mature",
)
