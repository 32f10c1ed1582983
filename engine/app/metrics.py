"""Prometheus metrics of a live pipeline process, served on ``/metrics`` (docs/dashboard.md).

Names follow Prometheus' conventions: a ``tapedeck_`` prefix, base units in the name
(seconds), ``_total`` on counters, and labels of low cardinality (``session``, and a
reason, purpose or liquidity where it says what was counted):

===========================================  =========  ==================================
name                                         type       labels
===========================================  =========  ==================================
``tapedeck_events_processed_total``          counter    session
``tapedeck_journal_lag_events``              gauge      session
``tapedeck_processing_seconds``              histogram  session
``tapedeck_end_to_end_latency_seconds``      histogram  session
``tapedeck_orders_total``                    counter    session, purpose
``tapedeck_fills_total``                     counter    session, liquidity
``tapedeck_risk_rejections_total``           counter    session, reason
``tapedeck_venue_rejections_total``          counter    session, reason
``tapedeck_feed_reconnects_total``           counter    session
``tapedeck_feed_gaps_total``                 counter    session
===========================================  =========  ==================================

Every metric lives in the :class:`PipelineMetrics`' own registry (not the library's global
one), so a process, or a test, can hold several. ``tape live`` adds the metrics of a live
session (:class:`engine.app.live.meter.LiveMetrics`). Nothing here is seen by a processor:
metrics observe the driver from outside, with the wall clock, and never feed back.

Every histogram is a :class:`BulkHistogram`: the same exposition as the library's
``Histogram``, and they also take a whole array of observations at once, so a caller can keep
its hot path to appending a number and fold thousands of measurements in later, in one numpy
call.
"""

from __future__ import annotations

import collections
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from threading import Event, Lock, Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from engine.events import decode
from engine.events.catalogue import is_msgpack
from engine.events.control import FeedGapDetected
from engine.events.market import MARKET_RECORD
from engine.events.trading import DecisionRejected, OrderFilled, OrderRejected, OrderSubmitted
from engine.log import Batch, EmbeddedLog, FixedBatch, PartitionReader
from engine.log.journal import journal_topic
from engine.runtime.driver import OutputWriter, PortOutput
from engine.runtime.manifest import output_topic
from engine.runtime.runner import Progress

LATENCY_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds: 10 us to 10 s (a journal event takes microseconds; a feed hiccup seconds)."""


class HistogramChild:
    """One labelled series of a :class:`BulkHistogram`: a count per bucket and the sum."""

    def __init__(self, bounds: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        self.bounds = bounds
        self._bounds = bounds.tolist()
        self.counts = np.zeros(len(bounds) + 1, np.int64)  # the last: above every bound
        self.sum = 0.0
        self._lock = Lock()  # the scrape reads from the server's thread

    def observe(self, value: float) -> None:
        """One observation."""
        i = bisect_left(self._bounds, value)  # the first bound >= value: Prometheus' le
        with self._lock:
            self.counts[i] += 1
            self.sum += value

    def observe_many(self, values: np.ndarray[Any, Any]) -> None:
        """Every value of ``values`` as one observation each, in one call."""
        if not len(values):
            return
        index = np.searchsorted(self.bounds, values, side="left")
        counts = np.bincount(index, minlength=len(self.counts))
        total = float(np.sum(values, dtype=np.float64))
        with self._lock:
            self.counts += counts
            self.sum += total

    def cumulative(self) -> tuple[list[int], float]:
        """Cumulative bucket counts (``le`` each bound, then ``+Inf``) and the sum."""
        with self._lock:
            counts, total = self.counts.copy(), self.sum
        return np.cumsum(counts).tolist(), total


class BulkHistogram(Collector):
    """A Prometheus histogram, exposed as the library's ``Histogram`` is (``_bucket`` with
    ``le``, ``_sum``, ``_count``), whose series also observe a numpy array at once
    (:meth:`HistogramChild.observe_many`). A custom collector of ``registry``, built on the
    library's public ``HistogramMetricFamily``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        if list(buckets) != sorted(buckets) or len(set(buckets)) != len(buckets):
            raise ValueError(f"{name}: buckets must be strictly increasing, got {buckets}")
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self.bounds = np.asarray(buckets, np.float64)
        self._children: dict[tuple[str, ...], HistogramChild] = {}
        self._lock = Lock()
        registry.register(self)

    def labels(self, *values: str) -> HistogramChild:
        """The series of these label values (created on first use)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        child = self._children.get(values)
        if child is None:
            with self._lock:
                child = self._children.setdefault(values, HistogramChild(self.bounds))
        return child

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        les = [floatToGoString(b) for b in self.bounds.tolist()] + ["+Inf"]
        with self._lock:
            children = list(self._children.items())
        for values, child in children:
            counts, total = child.cumulative()
            family.add_metric(list(values), list(zip(les, counts, strict=True)), total)
        return [family]


class PipelineMetrics:
    """The metrics of one process hosting pipelines; see the module docstring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "tapedeck_events_processed",
            "Journal events pushed through the pipeline.",
            ["session"],
            registry=r,
        )
        self.lag = Gauge(
            "tapedeck_journal_lag_events",
            "Journal events appended but not yet processed.",
            ["session"],
            registry=r,
        )
        self.processing = BulkHistogram(
            "tapedeck_processing_seconds",
            "Wall time to push one slice of journal events through every stage.",
            ["session"],
            LATENCY_BUCKETS,
            r,
        )
        self.end_to_end = BulkHistogram(
            "tapedeck_end_to_end_latency_seconds",
            "From the feed receiving a journal event (its ts_recv) to the pipeline "
            "having processed it.",
            ["session"],
            LATENCY_BUCKETS,
            r,
        )
        self.orders = Counter(
            "tapedeck_orders", "Orders submitted, by purpose.", ["session", "purpose"], registry=r
        )
        self.fills = Counter(
            "tapedeck_fills", "Fills, by liquidity (maker, taker).", ["session", "liquidity"],
            registry=r,
        )  # fmt: skip
        self.risk_rejections = Counter(
            "tapedeck_risk_rejections",
            "Decisions refused by risk, by reason.",
            ["session", "reason"],
            registry=r,
        )
        self.venue_rejections = Counter(
            "tapedeck_venue_rejections",
            "Orders or cancels refused by the venue, by reason.",
            ["session", "reason"],
            registry=r,
        )
        self.reconnects = Counter(
            "tapedeck_feed_reconnects", "Feed connections re-established.", ["session"],
            registry=r,
        )  # fmt: skip
        self.gaps = Counter(
            "tapedeck_feed_gaps",
            "Breaks in the venue's update sequence (feed.gap_detected).",
            ["session"],
            registry=r,
        )

    def processed(self, session: str, events: int, seconds: float | None, lag: int) -> None:
        """A slice of ``events`` journal events took ``seconds`` (None: not measured);
        ``lag`` events were still waiting in the journal after it."""
        self.events.labels(session).inc(events)
        self.lag.labels(session).set(lag)
        if seconds is not None:
            self.processing.labels(session).observe(seconds)

    def latency(self, session: str, ts_recv_ns: Iterable[int], now_ns: int) -> None:
        """The events the feed received at ``ts_recv_ns`` are processed at ``now_ns``."""
        received = np.fromiter(ts_recv_ns, np.int64)
        seconds = np.maximum(now_ns - received, 0) / 1e9
        self.end_to_end.labels(session).observe_many(seconds)

    def count(self, session: str, events: Iterable[Any]) -> None:
        """Count what matters among a slice's events (journal or trading outputs): tallied
        first, so each series is incremented once per call however many events it counts."""
        tally: collections.Counter[tuple[Counter, tuple[str, ...]]] = collections.Counter()
        for event in events:
            if isinstance(event, OrderSubmitted):
                tally[self.orders, (session, event.purpose)] += 1
            elif isinstance(event, OrderFilled):
                tally[self.fills, (session, event.liquidity)] += 1
            elif isinstance(event, DecisionRejected):
                tally[self.risk_rejections, (session, event.reason)] += 1
            elif isinstance(event, OrderRejected):
                tally[self.venue_rejections, (session, event.reason)] += 1
            elif isinstance(event, FeedGapDetected):
                tally[self.gaps, (session,)] += 1
        for (metric, labels), n in tally.items():
            metric.labels(*labels).inc(n)

    def reconnected(self, session: str) -> None:
        """The feed lost its connection and made a new one."""
        self.reconnects.labels(session).inc()


@dataclass
class MetricsServer:
    """``/metrics`` served over HTTP from a daemon thread."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful when it was started on port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(metrics: PipelineMetrics, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``metrics`` on ``http://host:port/metrics`` (loopback unless told otherwise)."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsServer(server, thread)


class _Tail:
    """New records of one topic since the last look (nothing until the topic exists)."""

    def __init__(self, log: EmbeddedLog, topic: str) -> None:
        self.log, self.topic = log, topic
        self.reader: PartitionReader | None = None
        self.next = 0

    def events(self) -> list[Any]:
        """The msgpack events appended since the last call (fixed-width records skipped)."""
        if self.reader is None:
            if not self.log.has_topic(self.topic):
                return []
            self.reader = self.log.reader(self.topic)
        out: list[Any] = []
        while (batch := self.reader.read(self.next, 65536)) is not None:
            if not isinstance(batch, FixedBatch):
                out.extend(decode(v) for v in batch.values())
            self.next = batch.next_offset
        return out


class RunMeter:
    """Feeds :class:`PipelineMetrics` from a run's progress callback (``tape run --follow
    --metrics-port``).

    Each call follows one slice: events processed and the lag come from the runner's
    progress; the processing time is the wall time since the previous call when that call
    left a backlog (so the runner went straight on; an interval in which it waited for the
    feed is not a processing time); the end-to-end latency of each of the slice's journal
    events is now minus its ``ts_recv``. Orders, fills and rejections are counted from the run's
    topics and gaps from the journal by a thread every ``count_every`` seconds, between
    :meth:`start` and :meth:`stop` (the run appends its outputs in batches, at the latest
    when it waits for the feed, so they are counted when they reach the log).
    """

    def __init__(
        self, metrics: PipelineMetrics, log: EmbeddedLog, session: str, run_id: str,
        count_every: float = 0.25,
    ) -> None:  # fmt: skip
        self.metrics, self.session = metrics, session
        self.journal = log.reader(journal_topic(session))
        self.tails = [_Tail(log, journal_topic(session))] + [
            _Tail(log, output_topic(run_id, port)) for port in ("risk", "orders", "executions")
        ]
        self.count_every = count_every
        self.done = 0
        self.backlog = False
        self.last = time.perf_counter()
        self._stop = Event()
        self._counter = Thread(target=self._count_until_stopped, name="metrics-count", daemon=True)

    def __call__(self, progress: Progress) -> None:
        now = time.perf_counter()
        seconds = now - self.last if self.backlog else None
        self.metrics.processed(
            self.session, progress.events - self.done, seconds, progress.stop - progress.offset
        )
        first = progress.offset - (progress.events - self.done)
        self.done, self.backlog = progress.events, progress.stop > progress.offset
        now = time.time_ns()
        for batch in self.journal.batches(first, progress.offset):
            self.metrics.latency(self.session, journal_ts_recv(batch), now)
        self.last = time.perf_counter()

    def start(self) -> RunMeter:
        """Start counting the run's outputs and the journal's gaps."""
        self._counter.start()
        return self

    def stop(self) -> None:
        """Stop counting, after counting what was appended last."""
        self._stop.set()
        if self._counter.is_alive():
            self._counter.join(timeout=10)
        self.count()

    def count(self) -> None:
        """Count what the run and the journal appended since the last count."""
        for tail in self.tails:
            self.metrics.count(self.session, tail.events())

    def _count_until_stopped(self) -> None:
        while not self._stop.wait(self.count_every):
            self.count()


def journal_ts_recv(batch: Batch) -> list[int]:
    """When the feed received each journal event of ``batch`` (its ``ts_recv``)."""
    if isinstance(batch, FixedBatch):
        received: list[int] = batch.view(MARKET_RECORD)["ts_recv"].tolist()
        return received
    return [int(getattr(decode(v), "ts_recv", 0)) for v in batch.values()]


def records_ts_recv(values: list[bytes]) -> list[int]:
    """The ``ts_recv`` of journal events given as canonical bytes (a Kafka worker's records)."""
    if all(not is_msgpack(v) for v in values):
        received: list[int] = np.frombuffer(b"".join(values), MARKET_RECORD)["ts_recv"].tolist()
        return received
    return [
        int(getattr(decode(v), "ts_recv", 0))
        if is_msgpack(v)
        else int(np.frombuffer(v, MARKET_RECORD)["ts_recv"][0])
        for v in values
    ]


class MeteredWriter:
    """An :class:`~engine.runtime.driver.OutputWriter` that counts what it passes on (orders,
    fills, rejections) into ``metrics`` before handing it to ``inner``."""

    def __init__(self, inner: OutputWriter, metrics: PipelineMetrics, session: str) -> None:
        self.inner, self.metrics, self.session = inner, metrics, session

    def write(self, output: PortOutput) -> None:
        if isinstance(output.events, list):  # msgpack ports: risk, orders, executions
            self.metrics.count(self.session, output.events)
        self.inner.write(output)

    def drain(self) -> None:
        self.inner.drain()
