"""A plain, slow, pure-Python reference of the ``labels`` processor, and a run helper.

It shares no code with the stage: it lists every journal event's time, computes the clock as a
running maximum, and for each feature vector scans forward for the first event whose clock is
past ``origin_ts + horizon`` and backwards through the ``book.mid`` events for the mids in
effect, exactly as docs/models.md defines them.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.pipelines import SHIPPED
from engine.events import decode
from engine.events.book import BOOK_MID
from engine.events.control import ClockTicked
from engine.events.decisions import LABEL
from engine.events.features import FEATURES_VECTOR
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner, Topology
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from tests.features_reference import _batches, fixed_topic


@dataclass
class LabelsRun:
    """A ``labels`` pipeline run over a session: its label settings and outputs."""

    settings: dict[str, Any]
    mids: np.ndarray[Any, Any]
    vectors: np.ndarray[Any, Any]
    labels: np.ndarray[Any, Any]


def run_labels(
    data: Path, session: str, scratch: Path, settings: dict[str, Any] | None = None
) -> LabelsRun:
    """Run pipeline ``labels`` over ``session`` into ``scratch`` (run id ``t``)."""
    log = EmbeddedLog(data)
    spec = session_opened(log, session).instrument
    resolved = resolve(
        SHIPPED, RunConfig(pipeline="labels", stages={"labels": settings or {}}), spec
    )
    runner = Runner(
        log,
        journal_topic(session),
        EmbeddedLog(scratch),
        "t",
        Topology(SHIPPED.get("labels"), resolved, session, spec),
    )
    runner.begin()
    runner.advance()
    runner.close()
    out = EmbeddedLog(scratch)
    return LabelsRun(
        resolved["stages"]["labels"],
        fixed_topic(out, "run.t.mid", BOOK_MID.dtype),
        fixed_topic(out, "run.t.features", FEATURES_VECTOR.dtype),
        fixed_topic(out, "run.t.labels", LABEL.dtype),
    )


def journal_times(data: Path, session: str) -> list[int | None]:
    """Every journal offset's time, or None for events that do not move the clock."""
    times: list[int | None] = []
    for batch in _batches(EmbeddedLog(data), journal_topic(session)):
        if isinstance(batch, FixedBatch):
            times.extend(int(t) for t in batch.view(MARKET_RECORD)["ts_event"])
        else:
            for value in batch.values():
                event = decode(value)
                times.append(event.ts_event if isinstance(event, ClockTicked) else None)
    return times


@dataclass
class ReferenceLabel:
    origin: int
    origin_ts: int
    cause: int
    ts_event: int
    mid_start: float
    mid_end: float
    move: float
    label: int
    undefined: bool


def reference_labels(
    times: list[int | None],
    mids: list[tuple[int, bool, float]],
    vectors: list[tuple[int, int]],
    horizon_ms: int,
    threshold_bp: float,
) -> list[ReferenceLabel]:
    """The labels of ``vectors`` ((cause, ts)), given journal ``times`` and ``mids``
    ((cause, two-sided, mid)), following docs/models.md."""
    clock: list[int | None] = []
    current: int | None = None
    for t in times:
        if t is not None and (current is None or t > current):
            current = t
        clock.append(current)

    causes = [cause for cause, _, _ in mids]

    def mid_before(offset: int) -> float:
        """The mid in effect after every book change caused before ``offset``."""
        last = bisect.bisect_left(causes, offset) - 1
        if last < 0:
            return math.nan
        _, two_sided, mid = mids[last]
        return mid if two_sided else math.nan

    horizon = horizon_ms * 1_000_000
    out = []
    for origin, origin_ts in vectors:
        maturity = next(
            (
                o
                for o in range(origin + 1, len(times))
                if clock[o] is not None and clock[o] > origin_ts + horizon  # type: ignore[operator]
            ),
            None,
        )
        if maturity is None:
            break  # later vectors cannot mature earlier
        start, end = mid_before(origin + 1), mid_before(maturity)
        undefined = math.isnan(start) or math.isnan(end)
        move = math.nan if undefined else math.log(end / start)
        threshold = threshold_bp * 1e-4
        label = 0 if undefined else (1 if move > threshold else (-1 if move < -threshold else 0))
        ts_event = clock[maturity]
        assert ts_event is not None
        out.append(
            ReferenceLabel(
                origin, origin_ts, maturity, ts_event, start, end, move, label, undefined
            )
        )
    return out


def same(a: float, b: float) -> bool:
    """Equal, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_matches_reference(run: LabelsRun, times: list[int | None]) -> int:
    """Every label field equals the reference's; the count compared."""
    mids = [(int(m["cause"]), bool(m["two_sided"]), float(m["mid"])) for m in run.mids]
    vectors = [(int(v["cause"]), int(v["ts_event"])) for v in run.vectors]
    expected = reference_labels(
        times, mids, vectors, run.settings["horizon_ms"], run.settings["threshold_bp"]
    )
    assert len(run.labels) == len(expected)
    for got, ref in zip(run.labels, expected, strict=True):
        assert int(got["type_id"]) == LABEL.type_id
        ints = (int(got[f]) for f in ("origin", "origin_ts", "cause", "ts_event", "label"))
        assert tuple(ints) == (ref.origin, ref.origin_ts, ref.cause, ref.ts_event, ref.label)
        assert bool(got["flags"] & 1) == ref.undefined
        for name in ("mid_start", "mid_end", "move"):
            assert same(float(got[name]), getattr(ref, name)), (name, ref)
    return len(expected)
