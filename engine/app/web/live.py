"""A live session as it grows: what the live page shows, read from the log.

The log is the truth: a :class:`LiveWatch` follows a session's journal and the newest run of
that session (the one ``tape run --follow`` is writing) and, on each :meth:`LiveWatch.poll`,
reads what was appended since the last one. From that it reports:

- **events/s**: journal records appended per second, and journal events the run got through
  per second, over the last few seconds of wall time;
- **lag**: journal events not yet processed by the run (the journal's last offset minus the
  newest cause in the run's topics), and the event time between them;
- **feed latency p50 / p99**: ``ts_recv - ts_event`` of the latest journal records, i.e. from
  the venue stamping an event to the feed receiving it (both are in the log);
- position, PnL, orders, fills and risk rejections by reason, recent decisions with what
  became of them, and the operator commands journaled.

A run appends its outputs in batches (at most 4,096 events, and whenever it waits for the
feed), so the run's side is as fresh as its last append. Processing latency inside the
pipeline is not in the log: the live process exports it as Prometheus histograms
(``engine.app.metrics``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

import msgspec
import numpy as np

from engine.events import by_name, decode, to_dict, type_of
from engine.events.control import (
    FeedGapDetected,
    FlattenPosition,
    HaltTrading,
    ResumeTrading,
    SessionClosed,
)
from engine.events.market import MARKET_RECORD
from engine.events.trading import DecisionRejected, OrderFilled, OrderSubmitted
from engine.log import EmbeddedLog, FixedBatch, PartitionReader
from engine.log.journal import journal_topic
from engine.runtime import Catalog, list_runs
from engine.runtime.manifest import RunManifest, output_topic
from engine.runtime.runs import session_opened

WINDOW_SECONDS = 5.0
LATENCY_SAMPLES = 5000
RECENT = 12
DECISION_TAIL = 2000
"""Decision records read back from a run's end when the watch starts."""


class LiveWatch:
    """Follows one session and its newest run; see the module docstring."""

    def __init__(self, log: EmbeddedLog, session: str, pipelines: Catalog) -> None:
        self.log, self.session, self.pipelines = log, session, pipelines
        self.instrument = session_opened(log, session).instrument
        self.journal = log.reader(journal_topic(session))
        self.next = max(self.journal.start_offset, self.journal.end_offset - LATENCY_SAMPLES)
        self.latency: deque[int] = deque(maxlen=LATENCY_SAMPLES)
        self.history: deque[tuple[float, int, int]] = deque()
        self.flags = {"closed": False, "halted": False}
        self.gaps = 0
        self.commands: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.last_ts_event = 0
        self._run: _RunTail | None = None
        self._lock = threading.Lock()

    def poll(self) -> dict[str, Any]:
        """Read what was appended since the last poll; the session's status now (one caller at
        a time: several pages may watch the same session)."""
        with self._lock:
            return self._poll()

    def _poll(self) -> dict[str, Any]:
        self._read_journal()
        manifest = self._newest_run()
        if manifest is not None and (self._run is None or self._run.run_id != manifest.run_id):
            self._run = _RunTail(self.log, manifest, self.pipelines)
        run = self._run.poll(manifest) if self._run is not None and manifest else None
        now = time.monotonic()
        end = self.journal.end_offset
        processed = run["processed"] if run else -1
        self.history.append((now, end, processed))
        while self.history and now - self.history[0][0] > WINDOW_SECONDS:
            self.history.popleft()
        then, end0, processed0 = self.history[0]
        span = now - then
        status: dict[str, Any] = {
            "session": self.session,
            "instrument": msgspec.structs.asdict(self.instrument),
            "journal": {
                "end": end,
                "events_per_s": (end - end0) / span if span > 0 else 0.0,
                "last_ts_ms": self.last_ts_event / 1e6,
                "gaps": self.gaps,
                **self.flags,
            },
            "latency": self._latency(),
            "commands": list(self.commands),
            "run": run,
        }
        if run is not None:
            run["events_per_s"] = (processed - processed0) / span if span > 0 else 0.0
            run["lag_events"] = max(0, end - 1 - processed)
            behind = (self.last_ts_event - run["last_ts"]) / 1e9 if processed >= 0 else None
            run["lag_seconds"] = None if behind is None else max(0.0, behind)
        return status

    def _latency(self) -> dict[str, Any]:
        if not self.latency:
            return {"samples": 0, "feed_p50_ms": None, "feed_p99_ms": None}
        values = np.fromiter(self.latency, np.int64)
        p50, p99 = np.percentile(values, [50, 99]) / 1e6
        return {"samples": len(values), "feed_p50_ms": float(p50), "feed_p99_ms": float(p99)}

    def _read_journal(self) -> None:
        while (batch := self.journal.read(self.next, 65536)) is not None:
            if isinstance(batch, FixedBatch):
                records = batch.view(MARKET_RECORD)
                self.latency.extend((records["ts_recv"] - records["ts_event"]).tolist())
                self.last_ts_event = max(self.last_ts_event, int(records["ts_event"].max()))
            else:
                for value in batch.values():
                    self._control(decode(value))
            self.next = batch.next_offset

    def _control(self, event: Any) -> None:
        self.last_ts_event = max(self.last_ts_event, int(event.ts_event))
        if isinstance(event, SessionClosed):
            self.flags["closed"] = True
        elif isinstance(event, FeedGapDetected):
            self.gaps += 1
        if isinstance(event, HaltTrading | ResumeTrading):
            self.flags["halted"] = isinstance(event, HaltTrading)
        if isinstance(event, HaltTrading | ResumeTrading | FlattenPosition):
            fields = msgspec.structs.asdict(event)
            self.commands.append(
                {"type": type_of(event).name, **fields, "ms": event.ts_event / 1e6}
            )

    def _newest_run(self) -> RunManifest | None:
        mine = [m for m in list_runs(self.log.root) if m.session == self.session]
        running = [m for m in mine if m.status == "running"]
        chosen = running or mine
        return chosen[-1] if chosen else None


class _RunTail:
    """Reads a run's topics as they grow."""

    def __init__(self, log: EmbeddedLog, manifest: RunManifest, pipelines: Catalog) -> None:
        self.log, self.run_id = log, manifest.run_id
        self.pipeline = pipelines.get(manifest.pipeline)
        self.readers: dict[str, PartitionReader] = {}
        self.next: dict[str, int] = {}
        self.orders = self.fills = 0
        self.rejections: Counter[str] = Counter()
        self.outcomes: dict[int, str] = {}
        self.decisions: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.portfolio: dict[str, Any] | None = None

    def reader(self, port: str) -> PartitionReader | None:
        if port not in self.readers:
            topic = output_topic(self.run_id, port)
            if not self.log.has_topic(topic):
                return None
            self.readers[port] = self.log.reader(topic)
        return self.readers[port]

    def poll(self, manifest: RunManifest) -> dict[str, Any]:
        self._trading()
        self._decisions()
        self._portfolio()
        processed, last_ts = self._progress()
        return {
            "run_id": self.run_id,
            "status": manifest.status,
            "processed": processed,
            "last_ts": last_ts,
            "orders": self.orders,
            "fills": self.fills,
            "rejections": dict(self.rejections.most_common()),
            "portfolio": self.portfolio,
            "decisions": [{**d, "outcome": self.outcomes.get(d["cause"], "")}
                          for d in reversed(self.decisions)],
        }  # fmt: skip

    def _trading(self) -> None:
        for port in ("risk", "orders", "executions"):
            reader = self.reader(port)
            if reader is None:
                continue
            offset = self.next.get(port, reader.start_offset)
            while (batch := reader.read(offset, 65536)) is not None:
                for value in batch.values():
                    self._count(decode(value))
                offset = batch.next_offset
            self.next[port] = offset

    def _count(self, event: Any) -> None:
        if isinstance(event, DecisionRejected):
            self.rejections[event.reason] += 1
            self.outcomes[event.decision_cause] = f"rejected: {event.reason}"
        elif isinstance(event, OrderSubmitted):
            self.orders += 1
            if event.purpose == "entry":
                self.outcomes[event.cause] = f"order {event.order_id}"
        elif isinstance(event, OrderFilled):
            self.fills += 1

    def _decisions(self) -> None:
        reader = self.reader("decisions")
        if reader is None:
            return
        dtype = by_name("consensus.decision").dtype
        offset = self.next.get(
            "decisions", max(reader.start_offset, reader.end_offset - DECISION_TAIL)
        )
        while (batch := reader.read(offset, 65536)) is not None:
            assert isinstance(batch, FixedBatch)
            assert dtype is not None
            records = batch.view(dtype)
            for r in records[records["direction"] != 0][-RECENT:]:
                self.decisions.append(
                    {"ms": int(r["ts_event"]) / 1e6, "cause": int(r["cause"]),
                     "direction": int(r["direction"]), "confidence": float(r["confidence"]),
                     "score": float(r["score"])}
                )  # fmt: skip
            offset = batch.next_offset
        self.next["decisions"] = offset

    def _last(self, port: str) -> dict[str, Any] | None:
        """The newest event of a port's topic, decoded (None: nothing appended yet)."""
        reader = self.reader(port)
        if reader is None:
            return None
        reader.refresh()
        batch = reader.read(reader.end_offset - 1, 1) if reader.end_offset else None
        return None if batch is None else to_dict(batch.values()[0])

    def _portfolio(self) -> None:
        state = self._last("portfolio")
        if state is not None:
            state["net_pnl"] = state["realised"] + state["unrealised"] - state["fees"]
            self.portfolio = state

    def _progress(self) -> tuple[int, int]:
        """The newest journal offset the run's topics show processed, and its event time."""
        processed, last_ts = -1, 0
        for _, port in self.pipeline.written():
            event = self._last(port.name)
            if event is not None and int(event[port.cause]) > processed:
                processed, last_ts = int(event[port.cause]), int(event["ts_event"])
        return processed, last_ts
