"""What a live session is doing, as one small object anyone in the process can read.

:class:`StatusTracker` watches the live runner's outputs (decisions, orders, portfolio) and
the gateway's hand-offs, and times them against the receive time of the journal event that
caused them (``ts_recv``, stamped by the feed when the frame came off the socket). The
``tape live`` status line prints :meth:`StatusTracker.status`; a web page or a metrics
exporter can read the same :class:`LiveStatus` (or pass ``on_status`` to the session).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.app.brokers.gateway import Handed
from engine.app.feeds.binance.client import FeedStats
from engine.runtime.driver import PortOutput
from engine.runtime.processor import Slice

WINDOW = 100_000
"""Latencies kept for the percentiles (the newest)."""


@dataclass(frozen=True)
class Decision:
    """One decision as the status shows it."""

    ts_event: int
    direction: int
    confidence: float


@dataclass(frozen=True)
class LiveStatus:
    """A live session's state at one moment (times in ns, latencies in microseconds)."""

    session: str
    run_id: str
    events: int
    """Journal events the runner has processed (this process)."""
    events_per_second: float
    lag_events: int
    """Journal events appended but not yet processed."""
    lag_ms: float
    """How long ago the newest processed event was received."""
    latency_p50_us: float
    latency_p99_us: float
    """Receive -> processed by the whole pipeline, over the newest events."""
    decisions: int
    orders: int
    fills: int
    position: int
    """Signed position, size units (from the newest ``portfolio.state``)."""
    equity: float
    pnl: float
    """Realised + unrealised - fees since the run began."""
    recent_decisions: list[Decision] = field(default_factory=list)
    connections: int = 0
    gaps: int = 0
    quarantined: int = 0
    feed_error: str = ""
    """The feed's last connection or snapshot error (empty while all is well)."""


class StatusTracker:
    """Collects what :class:`LiveStatus` reports (see the module docstring)."""

    def __init__(self, session: str, run_id: str, clock: Callable[[], int] = time.time_ns):
        self.session, self.run_id, self.clock = session, run_id, clock
        self.events = self.decisions = self.orders = self.fills = 0
        self.processed_latency: deque[int] = deque(maxlen=WINDOW)
        self.decision_latency: deque[tuple[int, int]] = deque(maxlen=WINDOW)
        """(receive time of the causing event, ns it took to the decision), every decision."""
        self.order_latency: deque[tuple[int, int]] = deque(maxlen=WINDOW)
        """(receive time of the causing event, ns it took to hand the order to the broker)."""
        self.recent: deque[Decision] = deque(maxlen=10)
        self.portfolio: Any = None
        self.last_recv = 0
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._piece: Slice | None = None

    def processed(self, piece: Slice) -> None:
        """The runner finished ``piece``."""
        self.events += len(piece)
        now = self.clock()
        received = _received(piece, piece.stop - 1)
        if received:
            self.last_recv = received
            self.processed_latency.append(now - received)
        self._rate.append((time.monotonic(), self.events))

    def output(self, output: PortOutput, piece: Slice) -> None:
        """A written output of the run (the live runner's hook)."""
        self._piece = piece
        name, now = output.port.name, self.clock()
        if name == "decisions":
            records = output.events
            assert isinstance(records, np.ndarray)
            self.decisions += len(records)
            for cause, record in zip(output.causes.tolist(), records, strict=True):
                received = _received(piece, cause)
                self.decision_latency.append((received, now - received))
                self.recent.append(
                    Decision(int(record["ts_event"]), int(record["direction"]),
                             float(record["confidence"]))
                )  # fmt: skip
        elif name == "portfolio":
            self.portfolio = output.events[-1]
        elif name == "executions":
            self.fills += sum(type(e).__name__ == "OrderFilled" for e in output.events)

    def handed(self, handed: Handed) -> None:
        """The gateway handed an order or cancel to the broker."""
        self.orders += 1
        if self._piece is not None:
            received = _received(self._piece, handed.event.cause)
            self.order_latency.append((received, handed.at - received))

    def status(self, appended: int, feed: FeedStats | None = None) -> LiveStatus:
        """The status now; ``appended``: journal events appended so far this process."""
        now = self.clock()
        p50, p99 = _percentiles(self.processed_latency)
        p = self.portfolio
        equity = float(p["equity"]) if p is not None else 0.0
        pnl = float(p["realised"] + p["unrealised"] - p["fees"]) if p is not None else 0.0
        return LiveStatus(
            self.session, self.run_id, self.events, self._events_per_second(),
            max(0, appended - self.events), (now - self.last_recv) / 1e6 if self.last_recv else 0.0,
            p50, p99, self.decisions, self.orders, self.fills,
            int(p["position"]) if p is not None else 0, equity, pnl, list(self.recent),
            *((feed.connections, feed.gaps, feed.quarantined, feed.last_error) if feed else ()),
        )  # fmt: skip

    def _events_per_second(self) -> float:
        if len(self._rate) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def _received(piece: Slice, offset: int) -> int:
    """Receive time of journal event ``offset`` of ``piece`` (0 when it has none)."""
    i = offset - piece.start
    if piece.market is not None:
        return int(piece.market["ts_recv"][i])
    return int(getattr(piece.control[i], "ts_recv", 0))


def _percentiles(values: deque[int]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    p50, p99 = np.percentile(np.fromiter(values, np.int64), [50, 99])
    return float(p50) / 1e3, float(p99) / 1e3
