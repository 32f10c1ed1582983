"""The ``labels`` processor: the realised direction of the mid over a horizon after each vector.

Inputs
    The journal's market records and ``clock.ticked`` control events: they move the event-time
    clock (the largest ``ts_event`` seen). Port ``mid`` (``book.mid``): the mid in effect is the
    last update's mid when it is two-sided, else undefined. Port ``features``
    (``features.vector``): each vector is an origin to label.
Outputs
    Port ``labels``: one ``labels.label`` per vector, emitted when it matures, at the first
    journal event whose time is past ``origin_ts + horizon``: ``origin`` and ``origin_ts`` are
    the vector's cause and time, ``mid_start`` the mid in effect at the vector, ``mid_end`` the
    mid in effect when the clock passed the horizon, ``move = log(mid_end / mid_start)``,
    ``label`` +1 / -1 / 0 against ``threshold_bp``; ``cause`` is the maturing event, ``ts_event``
    the clock then. Labels come out in origin order. Vectors still pending when the journal
    ends are never labelled (their outcome is unknown).
State
    The clock, the mid in effect, and the pending origins (offset, time, mid at the origin).
    :meth:`snapshot` / :meth:`restore` serialise them exactly (msgpack float64).
Guarantees
    Deterministic and batch-independent: one compiled loop (:mod:`streams.labels.kernel`)
    visits journal offsets in order and carries its state between calls. A label never exists
    before its outcome is known: it is emitted by the first event past its horizon, never by
    one at or before it. Pure: no I/O, clock or environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from engine.events.control import ClockTicked, InstrumentSpec
from engine.events.decisions import L_UNDEFINED, LABEL, new_records
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import ConfigError, Stage, typed_config
from streams.labels import kernel as k

LABELS_PORT = Port("labels", LABEL)
STATE_VERSION = 1
assert k.UNDEFINED == L_UNDEFINED


@dataclass(frozen=True)
class LabelsConfig:
    """Settings of the ``labels`` processor (defaults per venue: :func:`labels_defaults`)."""

    horizon_ms: int = 1000
    """How far ahead of each vector the mid is looked at, in ms of event time."""
    threshold_bp: float = 0.3
    """A move (log mid ratio) beyond +-threshold_bp * 1e-4 is up / down, else flat."""


VENUE_DEFAULTS: dict[str, LabelsConfig] = {
    "BINANCE": LabelsConfig(horizon_ms=2000, threshold_bp=0.3),
    "B3": LabelsConfig(horizon_ms=15000, threshold_bp=0.5),
}
"""Defaults by venue prefix; any other venue (NASDAQ equities) gets ``LabelsConfig()``.
Chosen for class balance on the bundled samples and the shared files: docs/models.md."""


def labels_defaults(spec: InstrumentSpec) -> LabelsConfig:
    """The defaults for an instrument's venue."""
    for prefix, config in VENUE_DEFAULTS.items():
        if spec.venue.startswith(prefix):
            return config
    return LabelsConfig()


def _validated(config: LabelsConfig) -> LabelsConfig:
    if config.horizon_ms <= 0:
        raise ConfigError(
            f"stage 'labels': horizon_ms must be a positive number of milliseconds, got "
            f"{config.horizon_ms}"
        )
    if not (math.isfinite(config.threshold_bp) and config.threshold_bp >= 0):
        raise ConfigError(
            f"stage 'labels': threshold_bp must be a finite number >= 0 (basis points), got "
            f"{config.threshold_bp}"
        )
    return config


class _State(msgspec.Struct, array_like=True):
    version: int
    config: tuple[int, float]
    si: list[int]
    mid: float
    origin: list[int]
    origin_ts: list[int]
    mid_start: list[float]
    last: list[float]


class LabelsStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config = _validated(typed_config(LabelsConfig, "labels", context.config))
        self.horizon = self.config.horizon_ms * 1_000_000
        self.threshold = self.config.threshold_bp * 1e-4
        self.si, self.sf = k.new_state()
        self.p_origin = np.zeros(64, np.int64)
        self.p_ts = np.zeros(64, np.int64)
        self.p_mid = np.zeros(64, np.float64)
        self.last = [math.nan] * 4
        """The last label: origin, label, move, maturing offset (for inspect)."""
        self._empty = LABELS_PORT.empty()

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """The labels that mature at the slice's events."""
        mids, vectors = piece.inputs["mid"], piece.inputs["features"]
        assert isinstance(mids, np.ndarray)
        assert isinstance(vectors, np.ndarray)
        times = self._event_times(piece)
        if len(mids) == 0 and len(vectors) == 0 and self._nothing_matures(times):
            return (self._empty,)
        self._make_room(len(vectors))
        pending = int(self.si[k.I_LEN])
        out = new_records(LABEL, pending + len(vectors))
        columns = {
            name: np.zeros(len(out), out.dtype[name])
            for name in ("label", "flags", "ts_event", "cause", "origin", "origin_ts")
        }
        floats = np.zeros((3, len(out)), np.float64)
        n = k.run(
            piece.start,
            times,
            np.ascontiguousarray(mids["cause"]).view(np.int64),
            np.ascontiguousarray(mids["two_sided"]),
            np.ascontiguousarray(mids["mid"]),
            np.ascontiguousarray(vectors["cause"]).view(np.int64),
            np.ascontiguousarray(vectors["ts_event"]),
            self.si,
            self.sf,
            self.p_origin,
            self.p_ts,
            self.p_mid,
            self.horizon,
            self.threshold,
            columns["label"],
            columns["flags"],
            columns["ts_event"],
            columns["cause"].view(np.int64),
            columns["origin"].view(np.int64),
            columns["origin_ts"],
            floats[0],
            floats[1],
            floats[2],
        )
        out = out[:n]
        for name, column in columns.items():
            out[name] = column[:n]
        # One canonical NaN, whatever the arithmetic produced.
        floats = np.where(np.isnan(floats[:, :n]), np.nan, floats[:, :n])
        out["mid_start"], out["mid_end"], out["move"] = floats
        if n:
            last = out[-1]
            self.last = [float(last["origin"]), float(last["label"]), float(last["move"]),
                         float(last["cause"])]  # fmt: skip
        return (out,)

    def _nothing_matures(self, times: np.ndarray[Any, Any]) -> bool:
        """Whether a slice without book changes or vectors leaves every label pending; if so,
        advance the clock here (the live path: most events change nothing else)."""
        if len(times) == 0:
            return True
        clock = max(int(self.si[k.I_CLOCK]), int(times.max()))
        length = int(self.si[k.I_LEN])
        if length and int(self.p_ts[int(self.si[k.I_HEAD])]) + self.horizon < clock:
            return False
        self.si[k.I_CLOCK] = clock
        return True

    @staticmethod
    def _event_times(piece: Slice) -> np.ndarray[Any, Any]:
        """Each journal event's time, or ``NO_TIME`` for events that do not move the clock."""
        if piece.market is not None:
            return np.ascontiguousarray(piece.market["ts_event"])
        return np.array(
            [e.ts_event if isinstance(e, ClockTicked) else k.NO_TIME for e in piece.control],
            np.int64,
        ).reshape(len(piece.control))

    def _make_room(self, arriving: int) -> None:
        """Move the live pending entries to the front and grow the queue to fit ``arriving``."""
        head, length = int(self.si[k.I_HEAD]), int(self.si[k.I_LEN])
        need = length + arriving
        size = len(self.p_origin)
        if head == 0 and need <= size:
            return
        while size < need:
            size *= 2
        live = slice(head, head + length)
        origin, ts, mid = self.p_origin[live], self.p_ts[live], self.p_mid[live]
        self.p_origin = np.zeros(size, np.int64)
        self.p_ts = np.zeros(size, np.int64)
        self.p_mid = np.zeros(size, np.float64)
        self.p_origin[:length], self.p_ts[:length], self.p_mid[:length] = origin, ts, mid
        self.si[k.I_HEAD] = 0

    def _pending(self) -> slice:
        head = int(self.si[k.I_HEAD])
        return slice(head, head + int(self.si[k.I_LEN]))

    def snapshot(self) -> bytes:
        """Clock, mid in effect, counters and every pending origin (floats exactly)."""
        live = self._pending()
        si = self.si.copy()
        si[k.I_HEAD] = 0
        state = _State(
            STATE_VERSION,
            (self.config.horizon_ms, self.config.threshold_bp),
            si.tolist(),
            float(self.sf[k.F_MID]),
            self.p_origin[live].tolist(),
            self.p_ts[live].tolist(),
            self.p_mid[live].tolist(),
            self.last,
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        identity = (self.config.horizon_ms, self.config.threshold_bp)
        s = load_state("labels", state, _State, STATE_VERSION, identity)
        self.si[:] = s.si
        self.sf[k.F_MID] = s.mid
        size = max(64, len(s.origin))
        self.p_origin = np.zeros(size, np.int64)
        self.p_ts = np.zeros(size, np.int64)
        self.p_mid = np.zeros(size, np.float64)
        n = len(s.origin)
        self.p_origin[:n], self.p_ts[:n], self.p_mid[:n] = s.origin, s.origin_ts, s.mid_start
        self.last = list(s.last)

    def inspect(self) -> dict[str, Any]:
        """Clock, mid in effect, pending origins and the last label."""
        live = self._pending()
        origins = self.p_origin[live]
        return {
            "horizon_ms": self.config.horizon_ms,
            "threshold_bp": self.config.threshold_bp,
            "clock": int(self.si[k.I_CLOCK]) if self.si[k.I_CLOCK] != k.NO_TIME else None,
            "mid_in_effect": float(self.sf[k.F_MID]),
            "pending": len(origins),
            "oldest_pending_origin": int(origins[0]) if len(origins) else None,
            "labels_emitted": int(self.si[k.I_EMITTED]),
            "undefined_labels": int(self.si[k.I_UNDEFINED]),
            "last_origin": self.last[0],
            "last_label": self.last[1],
            "last_move": self.last[2],
            "last_cause": self.last[3],
        }


def _defaults(spec: InstrumentSpec) -> dict[str, Any]:
    config = labels_defaults(spec)
    return {"horizon_ms": config.horizon_ms, "threshold_bp": config.threshold_bp}


LABELS_STAGE = Stage(
    "labels",
    LabelsStage,
    (LABELS_PORT,),
    inputs=("mid", "features"),
    defaults=_defaults,
    doc="the realised mid move over a horizon after each feature vector (+1 / 0 / -1), "
    "emitted when it matures in event time",
)
