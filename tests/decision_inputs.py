"""Test-only inputs for the consensus (predictions, labels from real data) and run helpers.

The ``labels`` and ``models`` stages are built elsewhere; to run the consensus in a pipeline
the tests use this stage instead. It is deterministic and slice-independent like a real one
(it walks the journal in offset order and carries its state), and registers the pipelines
``test-agents`` (book, mid, features, agents) and ``test-consensus`` (those, this stage, then
the consensus).

Labels follow ``labels.label``: a vector's label matures at the first journal event whose
``ts_event`` is past ``origin_ts + HORIZON_NS``; ``mid_end`` is the last two-sided ``book.mid``
caused before that event; the label is the sign of ``log(mid_end / mid_start)`` beyond
``THRESHOLD`` (flag undefined when either mid is missing).

Predictions: ``meta`` is a momentum rule on ``return_5s`` (NaN while it is NaN: "no bundle"),
``online`` is cold until the first label matured, then the mirror image of ``meta``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.app.pipelines import SHIPPED
from engine.events.control import InstrumentSpec
from engine.events.decisions import (
    L_UNDEFINED,
    LABEL,
    P_NO_BUNDLE,
    P_NO_MODEL,
    P_ONLINE_COLD,
    PREDICTION,
    new_records,
)
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import (
    Pipeline,
    Port,
    RunConfig,
    Runner,
    Slice,
    Stage,
    StageContext,
    Topology,
)
from engine.runtime.processor import Output
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from streams.agents import AGENTS_STAGE
from streams.book.stage import BOOK_STAGE
from streams.consensus import CONSENSUS_STAGE
from streams.features import FEATURES_STAGE, INDEX
from streams.mid import MID_STAGE
from tests.sliced import topology

HORIZON_NS = 2_000_000_000
THRESHOLD = 0.5e-4
RETURN_5S = INDEX["return_5s"]


def momentum(r: float) -> tuple[float, float, float]:
    """(down, flat, up) from a 5 s return in bps: the further it moved, the surer it goes on."""
    z = math.tanh(r / 2.0)
    return 0.7 * (1.0 - z) / 2.0, 0.3, 0.7 * (1.0 + z) / 2.0


class _State(msgspec.Struct, array_like=True):
    clock: int
    mid: float
    labelled: int
    pending: list[tuple[int, int, float]]


class DecisionInputs:
    """Predictions and labels for every vector (see the module docstring)."""

    def __init__(self, context: StageContext) -> None:
        self.clock = 0
        self.mid = math.nan
        self.labelled = 0
        self.pending: deque[tuple[int, int, float]] = deque()  # origin, origin ts, mid there

    def process(self, piece: Slice) -> tuple[Output, ...]:
        mids = piece.inputs["mid"]
        vectors = piece.inputs["features"]
        assert isinstance(mids, np.ndarray)
        assert isinstance(vectors, np.ndarray)
        if piece.market is not None:
            stamps = piece.market["ts_event"].tolist()
        else:
            stamps = [int(getattr(e, "ts_event", 0)) for e in piece.control]
        mid_at = {int(m["cause"]): float(m["mid"]) for m in mids if m["two_sided"]}
        vec_at = {int(v["cause"]): v for v in vectors}
        labels, predictions = [], []
        for i, ts in enumerate(stamps):
            offset = piece.start + i
            self.clock = max(self.clock, ts)
            while self.pending and self.pending[0][1] + HORIZON_NS < self.clock:
                labels.append((offset, self.clock, *self.pending.popleft(), self.mid))
                self.labelled += 1
            if offset in mid_at:
                self.mid = mid_at[offset]
            if offset in vec_at:
                v = vec_at[offset]
                predictions.append(self._predict(v))
                self.pending.append((offset, int(v["ts_event"]), self.mid))
        return self._predictions(predictions), self._labels(labels)

    def _predict(self, vector: Any) -> tuple[int, int, tuple[float, ...], tuple[float, ...]]:
        r = float(vector["values"][RETURN_5S])
        meta = momentum(r) if not math.isnan(r) else (math.nan,) * 3
        online = (meta[2], meta[1], meta[0]) if self.labelled else (math.nan,) * 3
        return int(vector["cause"]), int(vector["ts_event"]), meta, online

    def _predictions(self, rows: list[Any]) -> np.ndarray[Any, Any]:
        out = new_records(PREDICTION, len(rows))
        for j, (cause, ts, meta, online) in enumerate(rows):
            out[j]["cause"], out[j]["ts_event"] = cause, ts
            out[j]["meta"], out[j]["online"] = meta, online
            nan = (math.nan,) * 3
            out[j]["context"], out[j]["micro"] = nan, nan
            probs = meta if not math.isnan(meta[0]) else online
            flags = (P_NO_BUNDLE if math.isnan(meta[0]) else 0) | (
                P_ONLINE_COLD if math.isnan(online[0]) else 0
            )
            if math.isnan(probs[0]):
                flags |= P_NO_MODEL
                out[j]["probs"] = nan
                out[j]["confidence"] = math.nan
            else:
                best = int(np.argmax(probs))
                out[j]["probs"], out[j]["direction"] = probs, best - 1
                out[j]["confidence"] = probs[best]
            out[j]["flags"] = flags
        return out

    def _labels(self, rows: list[Any]) -> np.ndarray[Any, Any]:
        out = new_records(LABEL, len(rows))
        for j, (cause, clock, origin, origin_ts, start, end) in enumerate(rows):
            row = out[j]
            row["cause"], row["origin"], row["origin_ts"] = cause, origin, origin_ts
            row["ts_event"] = clock
            row["mid_start"], row["mid_end"] = start, end
            if math.isnan(start) or math.isnan(end):
                row["flags"], row["move"] = L_UNDEFINED, math.nan
            else:
                move = math.log(end / start)
                row["move"] = move
                row["label"] = 1 if move > THRESHOLD else -1 if move < -THRESHOLD else 0
        return out

    def snapshot(self) -> bytes:
        state = _State(self.clock, self.mid, self.labelled, list(self.pending))
        return msgspec.msgpack.encode(state)

    def restore(self, state: bytes) -> None:
        s = msgspec.msgpack.decode(state, type=_State)
        self.clock, self.mid, self.labelled = s.clock, s.mid, s.labelled
        self.pending = deque(tuple(p) for p in s.pending)  # type: ignore[misc]

    def inspect(self) -> dict[str, Any]:
        return {"pending": len(self.pending), "labelled": self.labelled}


INPUTS_STAGE = Stage(
    "test-decision-inputs",
    DecisionInputs,
    (Port("predictions", PREDICTION), Port("labels", LABEL)),
    inputs=("mid", "features"),
)
AGENTS_PIPELINE = Pipeline("test-agents", (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, AGENTS_STAGE))
CONSENSUS_PIPELINE = Pipeline(
    "test-consensus",
    (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, AGENTS_STAGE, INPUTS_STAGE, CONSENSUS_STAGE),
)

PIPELINES = SHIPPED.extended(AGENTS_PIPELINE, CONSENSUS_PIPELINE)
"""The shipped pipelines and this module's."""


# -- running the test pipelines ------------------------------------------------------------------


@dataclass
class Run:
    """One run of a test pipeline over a session, with its topics readable by port."""

    spec: InstrumentSpec
    resolved: dict[str, Any]
    topology: Topology
    out: EmbeddedLog

    def topic(self, port: str, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
        """Every record of the run's port ``port``, as ``dtype``."""
        batch = self.out.reader(f"run.t.{port}").read(0, 10**8)
        return batch.view(dtype) if isinstance(batch, FixedBatch) else np.zeros(0, dtype)


def run_pipeline(
    data: Path, session: str, scratch: Path, config: RunConfig, batch: int = 65536
) -> Run:
    """Run ``config`` over ``session`` into ``scratch`` (run id ``t``) in one go."""
    log = EmbeddedLog(data)
    top = topology(log, session, config, pipelines=PIPELINES)
    runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), "t", top)
    runner.begin()
    runner.advance(batch=batch)
    runner.close()
    spec = session_opened(log, session).instrument
    return Run(spec, resolve(PIPELINES, config, spec), top, EmbeddedLog(scratch))
