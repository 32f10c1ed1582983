"""A live trading session: feed in, journal, runner, order gateway, broker out.

Everything from outside enters the session journal first (:class:`LiveJournal`): market data
from the feed, the broker's reports, clock ticks, operator commands. Each append is handed in
memory to :meth:`LiveSession._pump`, which steps each slice through the pipeline
(:class:`~engine.runtime.live.LiveRunner`) — orders the pipeline emits are appended to the
run's ``orders`` topic and handed to the broker through the :class:`OrderGateway` in that
same step — and then shows it to the broker (the paper broker moves its book and fills what it
holds). The broker's reports are journaled and processed next, in journal order.

Start: open the journal (``session.opened``, or ``session.resumed`` after a clean stop), start
or resume the run (from its snapshot), rebuild the paper broker from the journal, replay
what the journal holds beyond the snapshot, then follow the feed. Stop (signal, duration,
the market's close, the end of the feed): stop the feed, journal ``session.closed`` with the
reason, drain, snapshot, seal the manifest (``stopped`` for an operator's stop, resumable;
``complete`` when the session ended by itself).

With ``LiveConfig.metrics`` (``tape live --metrics-port``) a :class:`LiveMeter` keeps what
each step, output and hand-off measured and folds it into Prometheus metrics every 0.25 s.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from engine.app.brokers import Broker, LiveMoney, OrderGateway, PaperBroker, choose_broker
from engine.app.brokers.choose import BrokerFactory, check_consent
from engine.app.brokers.gateway import Handed
from engine.app.feeds.binance import BinanceFeed, FeedConfig, FeedResume, resume_from_journal
from engine.app.ingest.session import read_manifest as read_ingest_manifest
from engine.app.live.hours import NS, AlwaysOpen, Clock, Hours, WallClock
from engine.app.live.journal import LiveJournal
from engine.app.live.meter import FOLD_EVERY, LiveMeter, LiveMetrics
from engine.app.live.status import LiveStatus, StatusTracker
from engine.events import decode
from engine.events.broker import BrokerReport
from engine.events.control import ClockTicked, InstrumentSpec, SessionClosed
from engine.events.trading import CancelRequested, OrderSubmitted
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic, quarantine_topic
from engine.log.syncer import BackgroundSync
from engine.models import ModelSource
from engine.runtime.driver import PortOutput, slice_of
from engine.runtime.live import LiveRunner, Processed, split
from engine.runtime.manifest import RunError, RunManifest, new_run_id, output_topic, run_dir
from engine.runtime.processor import Slice
from engine.runtime.runs import StartedRun, seal_run, start_run
from engine.runtime.topology import Catalog, RunConfig

if TYPE_CHECKING:  # confluent-kafka loads only for a session on Kafka
    from engine.log.kafka import KafkaLog

INBOX_EVERY = 0.1
"""Seconds between looks at the session's inbox: commands from other processes are journaled
within this (they are not on the hot path)."""


@dataclass
class LiveConfig:
    """One live session of one instrument (docs/live.md)."""

    session: str
    feed: FeedConfig
    instrument: InstrumentSpec
    pipelines: Catalog
    run: RunConfig = field(default_factory=RunConfig)
    run_id: str | None = None
    broker: str = "paper"
    """``paper``, ``simulated`` (the pipeline's own simulated venue: a backtest on live data),
    or a real venue's adapter (needs ``consent``)."""
    consent: LiveMoney = field(default_factory=lambda: LiveMoney(False, {}))
    adapters: Mapping[str, BrokerFactory] = field(default_factory=dict)
    paper_latency_ms: float = 1.0
    tick_ms: int = 1000
    """``clock.ticked`` interval (0: none)."""
    duration: float | None = None
    """Seconds to run, then stop (resumable)."""
    hours: Hours = field(default_factory=AlwaysOpen)
    visible_within: float = 0.1
    sync_ms: int = 0
    """Sync the journal from a background thread every this many ms (0: the log's own fsync
    policy only). ``tape live`` appends without syncing and syncs this way every 100 ms."""
    models: ModelSource | None = None
    metrics: LiveMetrics | None = None
    """Prometheus metrics to feed (``tape live --metrics-port``; None: none kept)."""


class HostedPipeline(Protocol):
    """The pipeline of a session on Kafka, run elsewhere than in the session's own step (the
    worker's loop on the journal topic: :class:`engine.app.worker.live.LiveWorker`)."""

    run_id: str
    error: BaseException | None

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[list[Processed]], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Start consuming the journal; report committed slices and a fatal error on ``loop``."""

    def close(self) -> None:
        """Stop once ``session.closed`` has been processed."""

    async def finished(self) -> None:
        """Wait until stopped."""


PipelineHost = Callable[["KafkaLog", str, RunConfig, InstrumentSpec], HostedPipeline]
"""Builds a session's :class:`HostedPipeline` (wired by the CLI: use cases are independent)."""


@dataclass(frozen=True)
class LiveResult:
    """How a live session ended."""

    reason: str
    manifest: RunManifest | None
    """The sealed run (None when stopped before the session opened)."""


class LiveSession:
    """See the module docstring."""

    def __init__(
        self,
        log: EmbeddedLog,
        config: LiveConfig,
        clock: Clock | None = None,
        on_status: Callable[[LiveStatus], None] | None = None,
        kafka: tuple[KafkaLog, PipelineHost] | None = None,
    ) -> None:
        check_consent(config.broker, config.consent, config.adapters)
        self.log, self.config = log, config
        self.kafka = kafka
        """A cluster and the host of the pipeline on it: the journal and the run are there
        (docs/live.md, "Live on Kafka"); ``log``'s data directory only holds what is local."""
        self.pipeline: HostedPipeline | None = None
        self.run_id = ""
        self.clock = clock or WallClock()
        self.on_status = on_status
        self.tracker: StatusTracker | None = None
        self.feed: BinanceFeed | None = None
        self.broker: Broker | None = None
        self._stop = asyncio.Event()
        self._reason, self._status = "stopped", "stopped"
        self._queue: deque[Slice] = deque()
        self._pumping = False
        self._drain_timer: asyncio.TimerHandle | None = None
        self._feed_stop = asyncio.Event()
        self._syncer: BackgroundSync | None = None
        self.meter: LiveMeter | None = None

    def stop(self, reason: str, status: str = "stopped") -> None:
        """End the session (a signal handler, a test, the scheduler)."""
        if not self._stop.is_set():
            self._reason, self._status = reason, status
            self._stop.set()

    def status(self) -> LiveStatus | None:
        """The session's status now (None before it has started)."""
        if self.tracker is None:
            return None
        stats = self.feed.stats if self.feed is not None else None
        return self.tracker.status(self.journal.appended, stats)

    async def run(self) -> LiveResult:
        """Wait for the market to open, trade until it closes (or a stop), then seal."""
        window = self.config.hours.window(self.clock.now())
        await self._until(window.opens)
        if self._stop.is_set():
            return LiveResult(f"{self._reason} before the session opened", None)
        started: StartedRun | None = None
        if self.kafka is None:
            started = self._start()
        else:
            self._start_on_kafka(*self.kafka)
        tasks = [self._spawn(self._follow(), "feed")]
        tasks += [self._spawn(self._closes(window.closes, window.reason), "schedule")]
        if self.config.tick_ms > 0:
            tasks.append(self._spawn(self._ticks(), "clock"))
        if self.on_status is not None:
            tasks.append(self._spawn(self._report_status(), "status"))
        if self.meter is not None:
            tasks.append(self._spawn(self._fold_metrics(self.meter), "metrics"))
        if self.kafka is None:
            tasks.append(self._spawn(self._inbox(), "inbox"))
        try:
            await self._stop.wait()
            self._feed_stop.set()
            await asyncio.gather(tasks[0], return_exceptions=True)
        finally:
            for task in tasks[1:]:
                task.cancel()
        if started is None:
            return LiveResult(self._reason, await self._finish_on_kafka())
        return LiveResult(self._reason, self._finish(started))

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task of the session; if it fails, the session stops (never runs on half-blind)."""
        task = asyncio.create_task(work, name=name)

        def done(finished: asyncio.Task[None]) -> None:
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                self.stop(f"{name} failed: {type(exc).__name__}: {exc}", "stopped")

        task.add_done_callback(done)
        return task

    # -- start ---------------------------------------------------------------------------

    def _start(self) -> StartedRun:
        config, log, session = self.config, self.log, self.config.session
        if read_ingest_manifest(log, session) is not None:
            raise RunError(
                f"session {session!r} was ingested from a file (tape ingest); a live session "
                "journals its own feed: give it a new --session name"
            )
        resume = resume_from_journal(log, session)
        self.journal = LiveJournal(
            log, session, config.instrument, f"binance live {config.feed.stream_url}",
            opened=resume.opened, closed=resume.closed, clock=self.clock.now,
        )  # fmt: skip
        self.journal.publish([])  # session.opened (or .resumed) before the run reads it
        self.journal.take_inbox()  # commands left while no session ran
        started, handed = self._open_run()
        self.tracker = StatusTracker(session, started.manifest.run_id, self.clock.now)
        self.gateway = self._open_broker(started, handed)
        self.live = LiveRunner(
            started.runner, hook=self._hook, visible_within=config.visible_within
        )
        for batch in started.runner.reader.batches(started.runner.offset):  # catch up
            self._step(slice_of(batch))
        if config.metrics is not None:  # attached after the catch-up: its latencies are not live
            self.meter = LiveMeter(
                config.metrics, session, self.clock.now,
                lag=lambda: self.journal.next_offset - self.live.offset,
            )  # fmt: skip
            self.meter.caught_up(self.tracker.events)
        self.journal.subscribers.append(self._on_journal)
        if config.sync_ms:
            topics = (journal_topic(session), quarantine_topic(session))
            directories = [log.reader(topic).directory for topic in topics]
            self._syncer = BackgroundSync(directories, config.sync_ms)
        self.feed = BinanceFeed(
            config.feed, config.instrument, self.journal, resume, self.clock.now
        )
        if self.meter is not None:
            self.meter.watch(self.feed.stats)
        gc.freeze()  # what setup built is permanent: collections stay short on the hot path
        return started

    def _start_on_kafka(self, kafka: KafkaLog, host: PipelineHost) -> None:
        """Start on a cluster: a new journal topic, the pipeline on it (the worker's loop),
        the broker fed from its commits (engine/app/worker/live.py)."""
        from engine.log.kafka.journal import KafkaJournalWriter

        config, session = self.config, self.config.session
        run = self._run_config(session)
        self.pipeline = host(kafka, session, run, config.instrument)
        run_id = self.pipeline.run_id
        if config.run_id is not None and config.run_id != run_id:
            raise RunError(
                f"on Kafka a run's id is derived from its session, pipeline and config "
                f"({run_id} here), as every worker derives it; omit --run-id"
            )
        writer = KafkaJournalWriter(kafka, session, config.instrument.symbol.encode())
        self.journal = LiveJournal(
            kafka, session, config.instrument, f"binance live {config.feed.stream_url}",
            clock=self.clock.now, writer=writer,
        )  # fmt: skip
        self.journal.publish([])  # session.opened, before the worker subscribes
        self.tracker = StatusTracker(session, run_id, self.clock.now)
        self.run_id, self.gateway = run_id, None
        if run.stages.get("trading", {}).get("venue") == "broker":
            self.broker = self._broker(session)
            self.gateway = OrderGateway(self.broker, 0, self.clock.now, self.tracker.handed)
        loop = asyncio.get_running_loop()
        self.pipeline.start(loop, self._committed, self._pipeline_failed)
        self.feed = BinanceFeed(
            config.feed, config.instrument, self.journal, FeedResume(), self.clock.now
        )
        gc.freeze()

    def _committed(self, steps: list[Processed]) -> None:
        """What the worker committed, slice by slice as the file-backed runner's step does:
        outputs to the status, orders to the broker, then the slice to the broker."""
        assert self.tracker is not None
        for step in steps:
            for output in step.outputs:
                self.tracker.output(output, step.piece)
                if output.port.name == "orders" and self.gateway is not None:
                    assert isinstance(output.events, list)
                    self.gateway.send(output.events)
            self.tracker.processed(step.piece)
            if self.broker is not None:
                self.broker.on_journal([step.piece])

    def _pipeline_failed(self, exc: BaseException) -> None:
        self.stop(f"pipeline failed: {type(exc).__name__}: {exc}", "stopped")

    async def _finish_on_kafka(self) -> RunManifest | None:
        """Journal ``session.closed``, wait for the worker to complete the run, and read its
        manifest from the cluster's meta topic."""
        assert self.pipeline is not None
        assert self.kafka is not None
        kafka = self.kafka[0]
        ts, local = self.journal.now()
        self.journal.publish([SessionClosed(ts, local, self.config.session, self._reason)])
        self.pipeline.close()
        await self.pipeline.finished()
        if self.broker is not None:
            self.broker.close()
        self.journal.close()
        if self.pipeline.error is not None:
            raise RunError(
                f"the pipeline of session {self.config.session!r} failed on "
                f"{kafka.url}: {str(self.pipeline.error).rstrip('.')}. The journal is kept "
                f"there: `tape mirror {kafka.url} DATA --session {self.config.session}` "
                'brings it back (docs/live.md, "Live on Kafka").'
            ) from self.pipeline.error
        raw = kafka.get_meta(f"run/{self.run_id}")
        if raw is None:
            raise RunError(f"run {self.run_id} left no manifest in {kafka.url}'s meta topic")
        return msgspec.json.decode(raw, type=RunManifest)

    def _open_run(self) -> tuple[StartedRun, list[OrderSubmitted | CancelRequested]]:
        """Start the run, or resume it; and the orders it had handed to its broker."""
        config, log = self.config, self.log
        run_id = config.run_id or new_run_id(log.root, config.session, config.run.pipeline)
        existing = (run_dir(log.root, run_id) / "manifest.json").is_file()
        handed = self._orders_handed(run_id) if existing else []
        started = start_run(
            log, config.session, None if existing else self._run_config(run_id),
            pipelines=config.pipelines, run_id=run_id, models=config.models,
        )  # fmt: skip
        return started, handed

    def _open_broker(
        self, started: StartedRun, handed: list[OrderSubmitted | CancelRequested]
    ) -> OrderGateway | None:
        """The broker and its gateway when the run trades through one (a resumed paper
        broker is rebuilt from the journal first)."""
        if started.resolved["stages"].get("trading", {}).get("venue") != "broker":
            return None
        run_id = started.manifest.run_id
        self.broker = self._broker(run_id)
        if isinstance(self.broker, PaperBroker) and started.manifest.resumed_from:
            self.broker.recover(self._cut(handed), handed, self._journaled_reports(run_id))
        assert self.tracker is not None
        return OrderGateway(self.broker, len(handed), self.clock.now, self._handed)

    def _run_config(self, account: str) -> RunConfig:
        """The run's config: the given one, with the broker's settings for ``trading``
        (``account``: whose reports the run takes; its run id, on Kafka its session)."""
        run = self.config.run
        stages = {k: dict(v) for k, v in run.stages.items()}
        has_trading = any(s.id == "trading" for s in self.config.pipelines.get(run.pipeline).stages)
        if has_trading and self.config.broker != "simulated":
            stages["trading"] = {**stages.get("trading", {}), "venue": "broker", "account": account}
        return msgspec.structs.replace(run, stages=stages)

    def _broker(self, run_id: str) -> Broker:
        def paper() -> Broker:
            return PaperBroker(
                self.config.instrument, run_id, self._journal_reports,
                self.config.paper_latency_ms, self.clock.now,
            )  # fmt: skip

        return choose_broker(self.config.broker, self.config.consent, paper, self.config.adapters)

    def _orders_handed(self, run_id: str) -> list[OrderSubmitted | CancelRequested]:
        """The orders a run had handed to its broker (its orders topic, before the resume
        cuts it back to the snapshot)."""
        topic = output_topic(run_id, "orders")
        if not self.log.has_topic(topic):
            return []
        events = [decode(v) for batch in self.log.reader(topic).batches() for v in batch.values()]
        return [e for e in events if isinstance(e, OrderSubmitted | CancelRequested)]

    def _journaled_reports(self, account: str) -> int:
        """Broker reports for ``account`` the journal holds."""
        return sum(
            isinstance(event, BrokerReport) and event.account == account
            for piece in self._cut([])
            for event in piece.control
        )

    def _cut(self, orders: list[OrderSubmitted | CancelRequested]) -> Iterator[Slice]:
        """The journal as slices, cut just after each order's cause."""
        after = sorted({o.cause + 1 for o in orders})
        for batch in self.log.reader(journal_topic(self.config.session)).batches():
            piece = slice_of(batch)
            yield from split(piece, [a for a in after if piece.start < a < piece.stop])

    # -- the hot path --------------------------------------------------------------------

    def _on_journal(self, slices: list[Slice]) -> None:
        self._queue.extend(slices)
        self._pump()

    def _pump(self) -> None:
        """Process queued slices in journal order (reports journaled meanwhile join the
        queue: never recursively)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue:
                piece = self._queue.popleft()
                self._step(piece)  # orders it causes go to the broker at once
                if self.broker is not None:
                    self.broker.on_journal([piece])
        finally:
            self._pumping = False
        self._schedule_drain()

    def _step(self, piece: Slice) -> None:
        meter = self.meter
        if meter is None:
            self.live.step(piece)
        else:
            began = time.perf_counter_ns()
            self.live.step(piece)
            meter.stepped(piece, time.perf_counter_ns() - began)
        assert self.tracker is not None
        self.tracker.processed(piece)

    def _hook(self, output: PortOutput, piece: Slice) -> None:
        assert self.tracker is not None
        self.tracker.output(output, piece)
        if self.meter is not None:
            self.meter.output(output, piece)
        if output.port.name == "orders" and self.gateway is not None:
            assert isinstance(output.events, list)
            self.gateway.send(output.events)

    def _handed(self, handed: Handed) -> None:
        assert self.tracker is not None
        self.tracker.handed(handed)
        if self.meter is not None:
            self.meter.handed(handed.at, handed.event.cause)

    def _journal_reports(self, reports: list[BrokerReport]) -> None:
        self.journal.publish(list(reports))

    def _schedule_drain(self) -> None:
        due = self.live.drain_due()
        if due is not None and self._drain_timer is None:
            self._drain_timer = asyncio.get_running_loop().call_later(due, self._drained)

    def _drained(self) -> None:
        self._drain_timer = None
        self._schedule_drain()

    # -- the other inputs ----------------------------------------------------------------

    async def _follow(self) -> None:
        assert self.feed is not None
        ended = await self.feed.run(self._feed_stop)
        if ended == "end of feed":
            self.stop("end of feed", "complete")

    async def _ticks(self) -> None:
        step = self.config.tick_ms * 1_000_000
        due = self.clock.now() + step
        while True:
            await self.clock.sleep_until(due)
            due += step
            if not self.journal.venue_clock.received:
                continue  # no venue time yet: a tick would stamp the journal with ours
            ts, local = self.journal.now()
            self.journal.publish([ClockTicked(ts, local)])

    async def _closes(self, closes: int, reason: str) -> None:
        deadline = closes
        if self.config.duration is not None:
            deadline = min(deadline, self.clock.now() + round(self.config.duration * NS))
        await self._until(deadline)
        if deadline == closes:
            self.stop(reason, "complete")
        else:
            self.stop("duration reached", "stopped")

    async def _until(self, ns: int) -> None:
        if ns >= 2**63 - 1:
            await self._stop.wait()
            return
        sleeper = asyncio.create_task(self.clock.sleep_until(ns))
        stopper = asyncio.create_task(self._stop.wait())
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeper, stopper):
            task.cancel()

    async def _inbox(self) -> None:
        """Journal the commands other processes left in the session's inbox (``tape halt``,
        the dashboard, a model promotion), every :data:`INBOX_EVERY` seconds."""
        while True:
            self.journal.take_inbox()
            await asyncio.sleep(INBOX_EVERY)

    async def _fold_metrics(self, meter: LiveMeter) -> None:
        while True:
            await asyncio.sleep(FOLD_EVERY)
            meter.fold()

    async def _report_status(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            status = self.status()
            if status is not None and self.on_status is not None:
                self.on_status(status)

    # -- stop ----------------------------------------------------------------------------

    def _finish(self, started: StartedRun) -> RunManifest:
        ts, local = self.journal.now()
        self.journal.publish([SessionClosed(ts, local, self.config.session, self._reason)])
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self.live.drain()
        if self.meter is not None:
            self.meter.fold()
        self.live.snapshot()
        manifest = seal_run(self.log, started, self._status)
        if self.broker is not None:
            self.broker.close()
        self.journal.close()
        if self._syncer is not None:
            self._syncer.stop()
        return manifest
