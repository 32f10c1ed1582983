"""The ``consensus`` processor: one weighted decision per feature vector, weights that learn.

Inputs
    Port ``features`` (``features.vector``): one decision per vector, and its warming-up flag.
    Port ``predictions`` (``model.prediction``): the meta-learner's and the online model's
    probabilities (``meta``, ``online``; NaN when absent). Port ``votes`` (``agents.votes``).
    Port ``labels`` (``labels.label``): realised directions, each for the vector at ``origin``,
    maturing in origin order. Predictions and votes are matched to vectors by cause; a missing
    one (or a missing port) leaves those contributors out of the decision.
Outputs
    Port ``decisions``: one ``consensus.decision`` per vector, with its cause and ``ts_event``:
    direction, confidence, score (total, models' part, agents' part) and every contributor's
    vote, confidence and weight (docs/agents.md, "Consensus").
State
    Each contributor's accuracy (an EWMA with a prior), the calls of decided vectors waiting for
    their label, and counters; snapshot and restore are exact.
Guarantees
    Deterministic and batch-independent: one compiled loop merges labels and vectors by offset
    (labels first at one offset) and carries its state between calls, so any slicing gives
    identical bytes. A label is only ever used after it matured (its cause), never before.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from engine.events.decisions import (
    CONTRIBUTORS,
    DECISION,
    LABEL,
    PREDICTION,
    VOTES,
    new_records,
)
from engine.events.types import EventType
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import Stage
from streams.consensus import config as cf
from streams.consensus import kernel as k

DECISIONS_PORT = Port("decisions", DECISION)
STATE_VERSION = 1


class _State(msgspec.Struct, array_like=True):
    version: int
    config: str
    si: list[int]
    acc: list[float]
    origins: list[int]
    calls: bytes
    last: bytes


def _records(piece: Slice, port: str, event_type: EventType, causes: Any) -> Any:
    """The slice's records on ``port`` (none when the port is not read), checked to carry
    at most one record per vector, with the vector's cause."""
    records = piece.inputs.get(port)
    if not isinstance(records, np.ndarray):
        assert event_type.dtype is not None
        return np.zeros(0, event_type.dtype)
    bad = k.unmatched(causes, records["cause"].astype(np.int64))
    if bad >= 0:
        raise ValueError(
            f"consensus: port {port!r} has a record (cause {bad}) that matches no feature "
            "vector, or two for one vector; it must emit at most one record per vector, with "
            "the vector's cause"
        )
    return records


class ConsensusStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config = cf.load(context.config)
        self.p = cf.params(self.config)
        self.identity = msgspec.json.encode(msgspec.to_builtins(self.config), order="sorted")
        self.si = np.zeros(k.N_I, np.int64)
        self.acc = np.full(k.N, self.config.accuracy_prior, np.float64)
        self.origin = np.zeros(self.config.max_pending, np.int64)
        self.calls = np.zeros((self.config.max_pending, k.N), np.int8)
        self.last = new_records(DECISION, 1)
        self._none = new_records(DECISION, 0)
        self._no_labels = np.zeros(0, LABEL.dtype)

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """One ``consensus.decision`` per ``features.vector`` of the slice."""
        vectors = piece.inputs["features"]
        assert isinstance(vectors, np.ndarray)
        lab = piece.inputs.get("labels")
        if not isinstance(lab, np.ndarray) or len(lab) == 0:
            if len(vectors) == 0:
                return (self._none,)
            lab = self._no_labels
        causes = vectors["cause"].astype(np.int64)
        preds = _records(piece, "predictions", PREDICTION, causes)
        votes = _records(piece, "votes", VOTES, causes)
        out = new_records(DECISION, len(vectors))
        out["ts_event"], out["cause"] = vectors["ts_event"], vectors["cause"]
        k.run(  # matches records to vectors by cause, writes straight into the columns
            causes,
            vectors["flags"].astype(np.int64),
            preds["cause"].astype(np.int64),
            preds["meta"],
            preds["online"],
            votes["cause"].astype(np.int64),
            votes["votes"],
            votes["confidence"],
            votes["reasons"],
            lab["cause"].astype(np.int64),
            lab["origin"].astype(np.int64),
            lab["label"].astype(np.int64),
            lab["flags"].astype(np.int64),
            self.si,
            self.acc,
            self.origin,
            self.calls,
            self.p,
            out["direction"],
            out["flags"],
            out["confidence"],
            out["score"],
            out["model_score"],
            out["agent_score"],
            out["votes"],
            out["confidences"],
            out["weights"],
        )
        if len(out):
            self.last[0] = out[-1]
        return (out,)

    def snapshot(self) -> bytes:
        """Accuracies, counters, the pending calls (oldest first) and the last decision."""
        cap = len(self.origin)
        live = (int(self.si[k.I_HEAD]) + np.arange(int(self.si[k.I_COUNT]))) % cap
        si = self.si.copy()
        si[k.I_HEAD] = 0  # the queue is written oldest first
        state = _State(
            STATE_VERSION,
            self.identity.decode(),
            si.tolist(),
            self.acc.tolist(),
            self.origin[live].tolist(),
            self.calls[live].tobytes(),
            self.last.tobytes(),
        )
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("consensus", state, _State, STATE_VERSION, self.identity.decode())
        self.si[:], self.acc[:] = s.si, s.acc
        count = len(s.origins)
        if count != self.si[k.I_COUNT] or count > len(self.origin):
            raise ValueError(f"consensus state holds {count} pending vectors but counts {s.si}")
        self.origin[:count] = s.origins
        self.calls[:count] = np.frombuffer(s.calls, np.int8).reshape(count, k.N)
        self.last[:] = np.frombuffer(s.last, DECISION.dtype)

    def inspect(self) -> dict[str, Any]:
        """Accuracies and current weights by contributor, label counters, the last decision."""
        si, last = self.si, self.last[0]
        return {
            "accuracy": dict(zip(CONTRIBUTORS, self.acc.tolist(), strict=True)),
            "scored_calls": dict(
                zip(CONTRIBUTORS, si[k.I_CALLS : k.I_CALLS + k.N].tolist(), strict=True)
            ),
            "labels": int(si[k.I_LABELS]),
            "labels_scored": int(si[k.I_SCORED]),
            "labels_undefined": int(si[k.I_UNDEFINED]),
            "labels_unmatched": int(si[k.I_UNMATCHED]),
            "vectors_never_labelled": int(si[k.I_UNLABELLED]),
            "calls_dropped_unscored": int(si[k.I_OVERFLOW]),
            "pending": int(si[k.I_COUNT]),
            "last_cause": int(last["cause"]),
            "last_direction": int(last["direction"]),
            "last_confidence": float(last["confidence"]),
            "last_weights": dict(zip(CONTRIBUTORS, last["weights"].tolist(), strict=True)),
        }


CONSENSUS_STAGE = Stage(
    "consensus",
    ConsensusStage,
    (DECISIONS_PORT,),
    inputs=("features", "predictions", "votes", "labels"),
    defaults=lambda _: cf.defaults(),
    doc="weighted decision of the models (60 %) and agents (40 %) per feature vector, weights "
    "adapting to each contributor's accuracy as labels mature (docs/agents.md)",
)
