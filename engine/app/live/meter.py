"""Prometheus metrics of a live session (``tape live --metrics-port``, docs/dashboard.md).

:class:`LiveMetrics` is :class:`~engine.app.metrics.PipelineMetrics` (what ``tape run`` and
``tape worker`` export) plus what only a live process knows:

===========================================  =========  ==================================
name                                         type       labels
===========================================  =========  ==================================
``tapedeck_decision_latency_seconds``        histogram  session
``tapedeck_order_latency_seconds``           histogram  session
``tapedeck_decisions_total``                 counter    session, direction
``tapedeck_feed_frames_total``               counter    session
``tapedeck_feed_snapshots_total``            counter    session
``tapedeck_feed_connect_failures_total``     counter    session
``tapedeck_quarantined_total``               counter    session
``tapedeck_position``                        gauge      session
``tapedeck_pnl``                             gauge      session
===========================================  =========  ==================================

:class:`LiveMeter` feeds them from the session. On the hot path (each slice the live runner
steps, each output port it writes, each order the gateway hands over) it only appends a
reference and a number to a list; every :data:`FOLD_EVERY` seconds, between two messages,
the session calls :meth:`LiveMeter.fold`, which turns what was kept into observations with a
few numpy calls (:class:`~engine.app.metrics.BulkHistogram`) and counts the outputs. The
lag gauge is read when Prometheus scrapes. Nothing here is seen by a processor.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from engine.app.feeds.binance.client import FeedStats
from engine.app.metrics import LATENCY_BUCKETS, BulkHistogram, PipelineMetrics
from engine.runtime.driver import PortOutput
from engine.runtime.processor import Slice

FOLD_EVERY = 0.25
"""Seconds between folds of what the meter kept into the metrics (Prometheus scrapes every
15 s or so: a quarter of a second is fresh enough and costs one fold per 0.25 s)."""
FOLD_AT = 4096
"""Slices kept before a fold happens at once, whatever the time (a long catch-up, a burst)."""
COUNTED = frozenset({"risk", "orders", "executions"})
"""Ports whose events are counted (orders, fills, rejections by reason)."""
DIRECTIONS = ("sell", "flat", "buy")
"""``tapedeck_decisions_total``'s ``direction`` for -1, 0 and +1."""


class LiveMetrics(PipelineMetrics):
    """The metrics of ``tape live``; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.decision_latency = BulkHistogram(
            "tapedeck_decision_latency_seconds",
            "From the feed reading a frame off the socket (ts_recv) to the decision it caused "
            "(every decision, flat ones included).",
            ["session"],
            LATENCY_BUCKETS,
            r,
        )
        self.order_latency = BulkHistogram(
            "tapedeck_order_latency_seconds",
            "From the feed reading a frame off the socket (ts_recv) to the order or cancel it "
            "caused being handed to the broker.",
            ["session"],
            LATENCY_BUCKETS,
            r,
        )
        self.decisions = Counter(
            "tapedeck_decisions", "Consensus decisions, by direction (buy, sell, flat).",
            ["session", "direction"], registry=r,
        )  # fmt: skip
        self.frames = Counter(
            "tapedeck_feed_frames", "WebSocket frames the feed read (repeats included).",
            ["session"], registry=r,
        )  # fmt: skip
        self.snapshots = Counter(
            "tapedeck_feed_snapshots", "REST depth snapshots journaled.", ["session"], registry=r
        )
        self.connect_failures = Counter(
            "tapedeck_feed_connect_failures", "Attempts to connect to the venue that failed.",
            ["session"], registry=r,
        )  # fmt: skip
        self.quarantined = Counter(
            "tapedeck_quarantined", "Malformed input sent to the session's quarantine topic.",
            ["session"], registry=r,
        )  # fmt: skip
        self.position = Gauge(
            "tapedeck_position", "Signed position in size units (the newest portfolio.state).",
            ["session"], registry=r,
        )  # fmt: skip
        self.pnl = Gauge(
            "tapedeck_pnl",
            "Realised + unrealised - fees since the run began, in the quote currency.",
            ["session"],
            registry=r,
        )


class LiveMeter:
    """Feeds :class:`LiveMetrics` from a :class:`~engine.app.live.session.LiveSession`.

    The session calls :meth:`stepped` after the live runner stepped a slice, :meth:`output`
    from the runner's output hook, :meth:`handed` from the order gateway, :meth:`watch` with
    its feed's counters, and :meth:`fold` every :data:`FOLD_EVERY` seconds and when it stops.
    ``clock`` is the session's (the one the feed stamps ``ts_recv`` with); ``lag`` gives the
    journal events appended but not yet processed, read at each scrape.
    """

    def __init__(
        self,
        metrics: LiveMetrics,
        session: str,
        clock: Callable[[], int],
        lag: Callable[[], int],
    ) -> None:
        self.metrics, self.session, self.clock = metrics, session, clock
        self.feed: FeedStats | None = None
        self._pieces: list[Slice] = []
        """The slices stepped since the last fold, when each was processed, what it took
        (three flat lists: converting a list of ints to numpy is a C loop)."""
        self._at: list[int] = []
        self._took: list[int] = []
        self._decisions: list[tuple[int, PortOutput, Slice]] = []
        self._counted: list[list[Any]] = []
        self._handed: list[tuple[int, int, Slice]] = []
        """(handed at, the order's cause, the slice behind it)."""
        self._piece: Slice | None = None
        self._portfolio: Any = None
        self._events = 0
        self._feed_seen = FeedStats()
        self._first_connection = True
        metrics.lag.labels(session).set_function(lag)

    def watch(self, feed: FeedStats) -> None:
        """Count what the feed does from now on (reconnects, gaps, frames, ...)."""
        self.feed, self._feed_seen = feed, replace(feed)

    # -- the hot path: keep, never compute ---------------------------------------------------

    def stepped(self, piece: Slice, took_ns: int) -> None:
        """The runner processed ``piece`` in ``took_ns``."""
        self._pieces.append(piece)
        self._at.append(self.clock())
        self._took.append(took_ns)
        if len(self._pieces) >= FOLD_AT:
            self.fold()

    def output(self, output: PortOutput, piece: Slice) -> None:
        """An output the runner wrote (its hook)."""
        name = output.port.name
        self._piece = piece
        if name == "decisions":
            self._decisions.append((self.clock(), output, piece))
        elif name in COUNTED:
            self._counted.append(output.events)  # type: ignore[arg-type]
        elif name == "portfolio":
            self._portfolio = output.events[-1]

    def handed(self, at: int, cause: int) -> None:
        """The gateway handed the order caused by journal offset ``cause`` over at ``at``."""
        if self._piece is not None:
            self._handed.append((at, cause, self._piece))

    def caught_up(self, events: int) -> None:
        """``events`` journal events were processed before the meter was attached (a resumed
        run catching up with its journal: counted, but their latencies are not live ones)."""
        self._events += events

    # -- off the hot path ---------------------------------------------------------------------

    def fold(self) -> None:
        """Turn what was kept since the last fold into metrics."""
        m, s = self.metrics, self.session
        pieces, at, took = self._pieces, self._at, self._took
        self._pieces, self._at, self._took = [], [], []
        decisions, self._decisions = self._decisions, []
        counted, self._counted = self._counted, []
        handed, self._handed = self._handed, []
        if pieces:
            received = _received_all(pieces)
            processed = np.repeat(np.array(at, np.int64), [len(r) for r in received])
            events = np.concatenate(received).astype(np.int64, copy=False)
            self._events += len(events)
            m.processing.labels(s).observe_many(np.array(took, np.float64) / 1e9)
            m.end_to_end.labels(s).observe_many(_seconds(processed, events))
        m.events.labels(s).inc(self._events)
        self._events = 0
        self._fold_decisions(decisions)
        m.count(s, itertools.chain.from_iterable(counted))
        if handed:
            sent = np.array([a for a, _, _ in handed], np.int64)
            causes = np.array([_received(p, c) for _, c, p in handed], np.int64)
            m.order_latency.labels(s).observe_many(_seconds(sent, causes))
        if self._portfolio is not None:
            p = self._portfolio
            m.position.labels(s).set(int(p["position"]))
            m.pnl.labels(s).set(float(p["realised"] + p["unrealised"] - p["fees"]))
        if self.feed is not None:
            self._fold_feed(self.feed)

    def _fold_decisions(self, decisions: list[tuple[int, PortOutput, Slice]]) -> None:
        if not decisions:
            return
        m, s = self.metrics, self.session
        at, received, directions = [], [], []
        for now, output, piece in decisions:
            records: Any = output.events
            received.append(_received_many(piece, output.causes))
            at.append(np.full(len(records), now, np.int64))
            directions.append(records["direction"])
        m.decision_latency.labels(s).observe_many(
            _seconds(np.concatenate(at), np.concatenate(received))
        )
        counts = np.bincount(np.concatenate(directions).astype(np.int64) + 1, minlength=3)
        for direction, count in zip(DIRECTIONS, counts.tolist(), strict=True):
            if count:
                m.decisions.labels(s, direction).inc(count)

    def _fold_feed(self, now: FeedStats) -> None:
        m, s, seen = self.metrics, self.session, self._feed_seen
        connections = now.connections - seen.connections
        if connections and self._first_connection:  # this process' first: not a reconnect
            connections, self._first_connection = connections - 1, False
        for counter, new in (
            (m.reconnects, connections),
            (m.gaps, now.gaps - seen.gaps),
            (m.frames, now.frames - seen.frames),
            (m.snapshots, now.snapshots - seen.snapshots),
            (m.connect_failures, now.connect_failures - seen.connect_failures),
            (m.quarantined, now.quarantined - seen.quarantined),
        ):
            if new > 0:
                counter.labels(s).inc(new)
        self._feed_seen = replace(now)


def _seconds(at: np.ndarray[Any, Any], received: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``at - received`` in seconds, for the events that have a receive time."""
    known = received > 0
    seconds: np.ndarray[Any, Any] = np.maximum(at[known] - received[known], 0) / 1e9
    return seconds


def _received_all(pieces: list[Slice]) -> list[np.ndarray[Any, Any]]:
    """The receive time of every journal event of each slice (a field view of a market
    slice's records: no copy)."""
    return [
        piece.market["ts_recv"] if piece.market is not None
        else np.array([getattr(e, "ts_recv", 0) for e in piece.control], np.int64)
        for piece in pieces
    ]  # fmt: skip


def _received(piece: Slice, offset: int) -> int:
    """Receive time of journal event ``offset`` of ``piece`` (0 when it has none)."""
    i = offset - piece.start
    if piece.market is not None:
        return int(piece.market["ts_recv"][i])
    return int(getattr(piece.control[i], "ts_recv", 0))


def _received_many(piece: Slice, offsets: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Receive times of journal events ``offsets`` of ``piece``."""
    index = offsets.astype(np.int64) - piece.start
    if piece.market is not None:
        received: np.ndarray[Any, Any] = piece.market["ts_recv"][index].astype(np.int64)
        return received
    return np.array([getattr(piece.control[i], "ts_recv", 0) for i in index.tolist()], np.int64)
