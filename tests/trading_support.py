"""Test-only pieces for the ``trading`` stage: a stage that emits deterministic decisions, the
``test-trading`` pipeline (book, mid, those decisions, trading) and run helpers.

The decision stage stands in for consensus: after every ``every``-th ``book.top`` it emits a
``consensus.decision`` whose direction follows the pattern +1, +1, -1, -1 (with every seventh
decision flat) and whose confidence cycles through ``confidences``, so the risk rules each get
exercised: entries, repeats while in a position, exits on the opposite direction, low
confidence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import numpy as np

from engine.app.pipelines import SHIPPED
from engine.events import decode
from engine.events.decisions import DECISION, new_records
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner
from engine.runtime.processor import Output, Port, Slice, StageContext
from engine.runtime.topology import Pipeline, Stage, typed_config
from streams.book.stage import BOOK_STAGE
from streams.mid import MID_STAGE
from streams.trading import TRADING_STAGE
from tests.sliced import topology

DECISIONS_PORT = Port("decisions", DECISION)


@dataclass(frozen=True)
class PatternConfig:
    """Settings of the test decision stage."""

    every: int = 40
    """Emit after every this-many book changes (0: never)."""
    confidences: tuple[float, ...] = (0.9, 0.7, 0.55, 0.62, 0.8)


def direction_of(k: int) -> int:
    """Direction of the k-th decision (k from 1): flat every 7th, else +1, +1, -1, -1..."""
    if k % 7 == 0:
        return 0
    return 1 if (k // 2) % 2 == 0 else -1


class PatternDecisions:
    """Emits ``consensus.decision`` records on a fixed pattern of book changes."""

    def __init__(self, context: StageContext) -> None:
        self.config: PatternConfig = typed_config(PatternConfig, "decisions", context.config)
        self.tops = 0

    def process(self, piece: Slice) -> tuple[Output, ...]:
        tops = piece.inputs["book"]
        assert isinstance(tops, np.ndarray)
        every = self.config.every
        counts = self.tops + np.arange(1, len(tops) + 1)
        self.tops += len(tops)
        if every <= 0:
            return (DECISIONS_PORT.empty(),)
        chosen = tops[counts % every == 0]
        ks = (counts[counts % every == 0] // every).tolist()
        out = new_records(DECISION, len(chosen))
        out["ts_event"], out["cause"] = chosen["ts_event"], chosen["offset"]
        conf = self.config.confidences
        out["direction"] = [direction_of(k) for k in ks]
        out["confidence"] = [conf[k % len(conf)] for k in ks]
        return (out,)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.tops)

    def restore(self, state: bytes) -> None:
        self.tops = msgspec.msgpack.decode(state, type=int)

    def inspect(self) -> dict[str, Any]:
        return {"tops": self.tops}


PATTERN_STAGE = Stage(
    "decisions",
    PatternDecisions,
    (DECISIONS_PORT,),
    inputs=("book",),
    defaults=lambda _: dataclasses.asdict(PatternConfig()),
    doc="test only: deterministic decisions every N book changes",
)
PIPELINE = Pipeline(
    "test-trading",
    (BOOK_STAGE, MID_STAGE, PATTERN_STAGE, TRADING_STAGE),
    doc="test only: book, mid, patterned decisions, trading",
)

PIPELINES = SHIPPED.extended(PIPELINE)
"""The shipped pipelines and this module's."""


class Outputs(NamedTuple):
    """Every output of one trading run, read back from its topics."""

    risk: list[Any]
    orders: list[Any]
    executions: list[Any]
    portfolio: np.ndarray[Any, Any]
    decisions: np.ndarray[Any, Any]
    tops: np.ndarray[Any, Any]
    mids: np.ndarray[Any, Any]


def read_outputs(sink: Path, run_id: str = "t") -> Outputs:
    """Decode a run's topics."""
    from engine.events.book import BOOK_MID, BOOK_TOP_DTYPE
    from engine.events.trading import PORTFOLIO_STATE

    log = EmbeddedLog(sink)

    def batches(port: str) -> list[Any]:
        reader = log.reader(f"run.{run_id}.{port}")
        found, offset = [], reader.start_offset
        while (batch := reader.read(offset, 1 << 20)) is not None:
            found.append(batch)
            offset = batch.next_offset
        return found

    def fixed(port: str, dtype: Any) -> np.ndarray[Any, Any]:
        parts = [b.view(dtype) for b in batches(port) if isinstance(b, FixedBatch)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    def events(port: str) -> list[Any]:
        return [decode(v) for b in batches(port) for v in b.values()]

    return Outputs(
        events("risk"),
        events("orders"),
        events("executions"),
        fixed("portfolio", PORTFOLIO_STATE.dtype),
        fixed("decisions", DECISION.dtype),
        fixed("book", BOOK_TOP_DTYPE),
        fixed("mid", BOOK_MID.dtype),
    )


def run_trading(
    data: Path, session: str, sink: Path, stages: dict[str, dict[str, Any]], batch: int = 65536
) -> Outputs:
    """Run ``test-trading`` over ``session`` with stage settings ``stages``; its outputs."""
    log = EmbeddedLog(data)
    config = RunConfig(pipeline="test-trading", stages=stages)
    runner = Runner(
        log,
        journal_topic(session),
        EmbeddedLog(sink),
        "t",
        topology(log, session, config, pipelines=PIPELINES),
    )
    runner.begin()
    runner.advance(batch=batch)
    runner.close()
    return read_outputs(sink)


class RealMarket(NamedTuple):
    """A sample session's market records with the tops and mids the book and mid stages made."""

    base: int
    """Journal offset of the first market record."""
    records: np.ndarray[Any, Any]
    tops: np.ndarray[Any, Any]
    mids: np.ndarray[Any, Any]


def real_market(data: Path, session: str, scratch: Path) -> RealMarket:
    """Every market record of ``session`` (one contiguous run of offsets) with its book."""
    from engine.events.market import MARKET_RECORD

    run = run_trading(data, session, scratch, {"decisions": {"every": 0}})
    reader = EmbeddedLog(data).reader(journal_topic(session))
    parts, base, offset = [], -1, reader.start_offset
    while (batch := reader.read(offset, 1 << 20)) is not None:
        if isinstance(batch, FixedBatch):
            if base < 0:
                base = batch.base_offset
            assert batch.base_offset == base + sum(len(p) for p in parts), "not contiguous"
            parts.append(batch.view(MARKET_RECORD).copy())
        offset = batch.next_offset
    return RealMarket(base, np.concatenate(parts), run.tops, run.mids)
