"""The monitor's figures: what an operator watches of a session, folded from the log's events.

Pure: no broker, no clock. The faust app (:mod:`engine.app.monitor.app`) feeds these folds
with the records it consumes, a test feeds them with an embedded run's topics, and both must
arrive at the same tables. Every figure is a function of committed events only, so the tables
can be rebuilt from the log at any time (which is why faust's at-least-once delivery is fine
here: a redelivered batch is folded by position, see :meth:`RunFigures.add`).

Figures come from the same event types the run's trading report and the live metrics read:

=====================  ================================================================
figure                 from
=====================  ================================================================
PnL by minute          ``portfolio.state``: net PnL (realised + unrealised - fees) of
                       the last state stamped in each UTC minute of event time
decisions              ``consensus.decision``, by direction (buy, sell, flat)
risk rejections        ``risk.decision_rejected``, by reason
orders                 ``orders.order_submitted``, by purpose
fills                  ``executions.order_filled``, by liquidity (maker, taker)
venue rejections       ``executions.order_rejected``, by reason
event-time lag         journal market records: ``ts_recv - ts_event`` (the venue stamping
                       an event to Tapedeck receiving it), a histogram in milliseconds
processing latency     per order, in event time: submitted -> acknowledged by the venue
                       and submitted -> first fill, in milliseconds
=====================  ================================================================

Wall-clock latency inside the pipeline is not in the log (it would differ on every replay);
the worker and live processes export it as Prometheus metrics (docs/dashboard.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from engine.events import decode
from engine.events.catalogue import is_msgpack
from engine.events.decisions import DECISION
from engine.events.market import MARKET_RECORD
from engine.events.trading import (
    PORTFOLIO_STATE,
    DecisionRejected,
    OrderAcknowledged,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)

NS_PER_MS = 1_000_000
NS_PER_MINUTE = 60 * 1_000_000_000
PERCENTILES = (50, 90, 99)
DIRECTIONS = {-1: "sell", 0: "flat", 1: "buy"}
RUN_PORTS = ("portfolio", "decisions", "risk", "orders", "executions")
"""The run topics the monitor reads (``run.<run id>.<port>``)."""


def minute_of(ts_ns: int) -> str:
    """The UTC minute holding an event time, as ``YYYY-MM-DDTHH:MM``."""
    start = ts_ns - ts_ns % NS_PER_MINUTE
    return datetime.fromtimestamp(start / 1e9, UTC).strftime("%Y-%m-%dT%H:%M")


def _bump(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def percentiles(histogram: Mapping[str, int]) -> dict[str, int | None]:
    """p50, p90, p99 and max of a histogram of integer values (keys are the values as text):
    the smallest value at or below which that share of the observations lies."""
    values = sorted((int(k), n) for k, n in histogram.items() if n > 0)
    total = sum(n for _, n in values)
    out: dict[str, int | None] = {f"p{q}": None for q in PERCENTILES}
    out["max"] = values[-1][0] if values else None
    out["count"] = total
    if not total:
        return out
    for q in PERCENTILES:
        need, seen = -(-q * total // 100), 0  # ceil(q% of total): nearest-rank percentile
        for value, n in values:
            seen += n
            if seen >= need:
                out[f"p{q}"] = value
                break
    return out


class SessionFigures(msgspec.Struct, kw_only=True):
    """What the session's journal says: how many events, up to when, and how late they came."""

    events: int = 0
    """Journal records folded."""
    next_offset: int = 0
    """The journal offset after the last record folded (a redelivered record is skipped)."""
    last_ts: int = 0
    """Event time of the newest market record, ns."""
    lag_ms: dict[str, int] = msgspec.field(default_factory=dict)
    """Histogram of ``ts_recv - ts_event`` of market records, whole milliseconds (floor)."""

    def add(self, offsets: Iterable[int], values: Iterable[bytes]) -> None:
        """Fold journal records (offset order); control events count but have no lag."""
        market: list[bytes] = []
        for offset, value in zip(offsets, values, strict=True):
            if offset < self.next_offset:
                continue  # at-least-once: seen already
            self.next_offset = offset + 1
            self.events += 1
            if not is_msgpack(value) and len(value) == MARKET_RECORD.itemsize:
                market.append(value)
        if not market:
            return
        records = np.frombuffer(b"".join(market), dtype=MARKET_RECORD)
        lag = (records["ts_recv"] - records["ts_event"]) // NS_PER_MS
        for value, n in zip(*np.unique(lag, return_counts=True), strict=True):
            _bump(self.lag_ms, str(int(value)), int(n))
        self.last_ts = max(self.last_ts, int(records["ts_event"].max()))

    def view(self) -> dict[str, Any]:
        """The session's figures as JSON-ready builtins, with the lag's percentiles."""
        return {
            "events": self.events,
            "last_event_time": _iso(self.last_ts),
            "event_time_lag_ms": percentiles(self.lag_ms),
        }


class RunFigures(msgspec.Struct, kw_only=True):
    """What one run's output topics say (see the module docstring for each figure)."""

    next_offsets: dict[str, int] = msgspec.field(default_factory=dict)
    """Per port, the topic offset after the last record folded."""
    pnl_by_minute: dict[str, float] = msgspec.field(default_factory=dict)
    position: int = 0
    """Position of the newest portfolio state, size units."""
    decisions: dict[str, int] = msgspec.field(default_factory=dict)
    rejections: dict[str, int] = msgspec.field(default_factory=dict)
    orders: dict[str, int] = msgspec.field(default_factory=dict)
    fills: dict[str, int] = msgspec.field(default_factory=dict)
    venue_rejections: dict[str, int] = msgspec.field(default_factory=dict)
    submitted: dict[str, int] = msgspec.field(default_factory=dict)
    """Event time each order was submitted, by order id (for the latencies)."""
    acknowledged: dict[str, int] = msgspec.field(default_factory=dict)
    """Event time of each order's acknowledgement by the venue."""
    first_fill: dict[str, int] = msgspec.field(default_factory=dict)
    """Event time of each order's first fill."""
    last_cause: int = -1
    """The newest journal offset behind any output folded: how far the run has got."""

    def add(self, port: str, offsets: Iterable[int], values: Iterable[bytes]) -> None:
        """Fold one port's records (topic order). Offsets make a redelivery harmless; the
        ports are independent topics, so they may arrive in any interleaving."""
        fresh, start = [], self.next_offsets.get(port, 0)
        for offset, value in zip(offsets, values, strict=True):
            if offset >= start:
                fresh.append(value)
                start = offset + 1
        self.next_offsets[port] = start
        if not fresh:
            return
        if port == "portfolio":
            self._portfolio(np.frombuffer(b"".join(fresh), dtype=PORTFOLIO_STATE.dtype))
        elif port == "decisions":
            self._decisions(np.frombuffer(b"".join(fresh), dtype=DECISION.dtype))
        elif port in RUN_PORTS:
            for value in fresh:
                self._event(decode(value))

    def _portfolio(self, states: np.ndarray[Any, Any]) -> None:
        net = states["realised"] + states["unrealised"] - states["fees"]
        for ts, pnl in zip(states["ts_event"].tolist(), net.tolist(), strict=True):
            self.pnl_by_minute[minute_of(ts)] = pnl  # the minute's last state wins
        self.position = int(states["position"][-1])
        self.last_cause = max(self.last_cause, int(states["cause"].max()))

    def _decisions(self, decisions: np.ndarray[Any, Any]) -> None:
        for direction, n in zip(
            *np.unique(decisions["direction"], return_counts=True), strict=True
        ):
            _bump(self.decisions, DIRECTIONS[int(direction)], int(n))
        self.last_cause = max(self.last_cause, int(decisions["cause"].max()))

    def _event(self, event: Any) -> None:
        if isinstance(event, DecisionRejected):
            _bump(self.rejections, event.reason)
        elif isinstance(event, OrderSubmitted):
            _bump(self.orders, event.purpose)
            self.submitted[str(event.order_id)] = event.ts_event
        elif isinstance(event, OrderAcknowledged):
            self.acknowledged.setdefault(str(event.order_id), event.ts_event)
        elif isinstance(event, OrderFilled):
            _bump(self.fills, event.liquidity)
            self.first_fill.setdefault(str(event.order_id), event.ts_event)
        elif isinstance(event, OrderRejected):
            _bump(self.venue_rejections, event.reason)
        cause = getattr(event, "cause", -1)
        self.last_cause = max(self.last_cause, cause)

    def latency_ms(self, reached: Mapping[str, int]) -> dict[str, int]:
        """Histogram (ms, floor) of submitted -> ``reached`` over orders seen on both ports."""
        out: dict[str, int] = {}
        for order, ts in reached.items():
            if order in self.submitted:
                _bump(out, str((ts - self.submitted[order]) // NS_PER_MS))
        return out

    def view(self) -> dict[str, Any]:
        """The run's figures as JSON-ready builtins (counts, PnL by minute, percentiles)."""
        pnl = dict(sorted(self.pnl_by_minute.items()))
        return {
            "through_journal_offset": self.last_cause,
            "pnl_by_minute": pnl,
            "net_pnl": next(reversed(pnl.values())) if pnl else None,
            "position": self.position,
            "decisions": dict(sorted(self.decisions.items())),
            "risk_rejections": dict(sorted(self.rejections.items())),
            "orders": dict(sorted(self.orders.items())),
            "fills": dict(sorted(self.fills.items())),
            "venue_rejections": dict(sorted(self.venue_rejections.items())),
            "processing_latency_ms": {
                "submitted_to_acknowledged": percentiles(self.latency_ms(self.acknowledged)),
                "submitted_to_first_fill": percentiles(self.latency_ms(self.first_fill)),
            },
        }


def split_run_topic(topic: str) -> tuple[str, str] | None:
    """``(run id, port)`` of a run topic the monitor reads, else None."""
    if not topic.startswith("run."):
        return None
    run_id, _, port = topic[4:].rpartition(".")
    return (run_id, port) if run_id and port in RUN_PORTS else None


def runs_of(session: str, run_ids: Iterable[str]) -> list[str]:
    """The runs of a session among ``run_ids``: both ``tape run`` and ``tape worker`` name a
    run ``<session>-<pipeline>-<suffix>`` (the session with characters outside
    ``[A-Za-z0-9_-]`` replaced by ``_``)."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", session) + "-"
    return sorted(r for r in run_ids if r.startswith(stem))


def to_builtins(figures: msgspec.Struct) -> dict[str, Any]:
    """A fold as plain builtins (what a faust table stores)."""
    out = msgspec.to_builtins(figures)
    assert isinstance(out, dict)
    return out


def _iso(ts_ns: int) -> str | None:
    if not ts_ns:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="milliseconds")
