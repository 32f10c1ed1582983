"""The paper broker: fills orders against the live book, outside the pipeline.

It is a venue of its own, built from the same pure pieces as the backtest: the ``book`` and
``mid`` processors rebuild the book from the journal as it is written, and the simulated
exchange of :mod:`streams.trading.execution` (queue position, ten levels, stops, reduce-only,
fees per venue) matches our orders against it. Its latency model: an order sent at event
time ``t`` (the pipeline's clock when it decided: the newest event time journaled) reaches the
book at ``t + latency_ms`` and acts on the first book state at or after that instant, exactly
as in a backtest. As that depends on nothing but the journal and the order, the broker acts
the same whether it is handed an order before or after it has seen the event that caused it.
Its reports become ``broker.*`` events for the journal; the ``trading`` stage learns of fills
only from there, so a replay sees exactly what the live run saw.

**Restart.** The paper broker keeps nothing but what the journal and the run's ``orders``
topic hold: :meth:`PaperBroker.recover` replays the journal through it with each order handed
over again after the event that caused it, drops the reports the journal already has, and
journals any it made but had not journaled when the process died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import numpy as np

from engine.app.brokers.base import ReportSink
from engine.app.pipelines import MID
from engine.events.broker import (
    BrokerOrderAcknowledged,
    BrokerOrderCancelled,
    BrokerOrderFilled,
    BrokerOrderRejected,
    BrokerReport,
)
from engine.events.control import InstrumentSpec
from engine.events.decisions import DECISION
from engine.events.market import MARKET_RECORD
from engine.events.trading import (
    CancelRequested,
    OrderAcknowledged,
    OrderCancelled,
    OrderFilled,
    OrderSubmitted,
)
from engine.runtime.processor import Output, Slice
from engine.runtime.runner import Topology
from engine.runtime.topology import Catalog, RunConfig, resolve
from streams.trading import matching as m
from streams.trading.config import trading_config, trading_defaults
from streams.trading.desk import clock_of
from streams.trading.execution import Market, Venue, VenueReport, market_slice
from streams.trading.portfolio import new_account

_NO_CAUSES = np.zeros(0, DECISION.dtype)["cause"]


class PaperBroker:
    """See the module docstring. ``account`` is the run id the reports are for."""

    name = "paper"

    def __init__(
        self,
        instrument: InstrumentSpec,
        account: str,
        sink: ReportSink,
        latency_ms: float = 1.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not latency_ms > 0:
            raise ValueError(f"the paper broker's latency must be > 0 ms, got {latency_ms}")
        config = trading_config("paper", {**trading_defaults(instrument), "latency_ms": latency_ms})
        value_factor = new_account(config, instrument.price_scale, instrument.size_scale)
        self.venue = Venue(config, value_factor.value_factor)
        self.venue.st[m.S_WAKE] = np.iinfo(np.int64).max  # a venue has no timers of ours
        book = resolve(Catalog(MID), RunConfig(pipeline=MID.name), instrument)
        self.book = Topology(MID, book, f"paper-{account}", instrument)
        self.account, self.sink, self.clock = account, sink, clock
        self.skip = 0
        """Reports still to drop because the journal has them (after :meth:`recover`)."""
        self.reported = 0

    def submit(self, order: OrderSubmitted) -> None:
        """An order reaches the book ``latency_ms`` after the event time it was sent at."""
        arrives = order.ts_event + self.venue.latency
        self.venue.submit(msgspec.structs.replace(order, arrives_at=arrives))

    def cancel(self, request: CancelRequested) -> None:
        """A cancel reaches the book ``latency_ms`` after the event time it was sent at."""
        arrives = request.ts_event + self.venue.latency
        self.venue.cancel(msgspec.structs.replace(request, arrives_at=arrives))

    def on_journal(self, pieces: list[Slice]) -> None:
        """Move the book and match our orders against it; journal what happened to them."""
        made: list[VenueReport] = []
        for piece in pieces:
            made += self._walk(self._market(piece))
        reports = [self._report(r) for r in made]
        self.reported += len(reports)
        dropped, self.skip = min(self.skip, len(reports)), max(0, self.skip - len(reports))
        if reports[dropped:]:
            self.sink(reports[dropped:])

    def recover(
        self,
        pieces: Iterable[Slice],
        orders: list[OrderSubmitted | CancelRequested],
        journaled: int,
    ) -> None:
        """Replay the session's journal (``pieces``, cut after each order's cause) with
        ``orders`` handed over again after their causes; ``journaled`` reports exist already."""
        self.skip = journaled
        by_cause: dict[int, list[OrderSubmitted | CancelRequested]] = {}
        for order in orders:
            by_cause.setdefault(order.cause, []).append(order)
        for piece in pieces:
            self.on_journal([piece])
            for order in by_cause.get(piece.stop - 1, []):
                if isinstance(order, OrderSubmitted):
                    self.submit(order)
                else:
                    self.cancel(order)

    def close(self) -> None:
        """Nothing to release: the paper venue lives in memory and the journal."""

    def _market(self, piece: Slice) -> Market:
        outputs = {port.name: out for port, out in self.book.push(piece)}
        records = piece.market
        if records is None:  # low-rate events: only a clock tick moves the venue's clock
            records = np.zeros(len(piece.control), MARKET_RECORD)
            records["ts_event"] = [clock_of(event) for event in piece.control]
        tops, mids = _fixed(outputs["book"]), _fixed(outputs["mid"])
        return market_slice(piece.start, records, tops, mids, _NO_CAUSES)

    def _walk(self, market: Market) -> list[VenueReport]:
        venue, made, i = self.venue, [], 0
        venue.st[m.S_TP] = venue.st[m.S_MP] = venue.st[m.S_DP] = 0
        while True:
            i, reason = venue.run(market, i)
            made += venue.reports(market.base)
            if reason == m.DONE:
                return made
            if reason == m.GROW:
                venue.grow()
            elif reason == m.AFTER:
                i += 1

    def _report(self, report: VenueReport) -> BrokerReport:
        """A venue report as the broker event the journal keeps."""
        ts, now, account, oid = report.ts_event, self.clock(), self.account, report.order_id
        if isinstance(report, OrderAcknowledged):
            return BrokerOrderAcknowledged(ts, now, account, oid, report.queue_ahead)
        if isinstance(report, OrderFilled):
            return BrokerOrderFilled(
                ts, now, account, oid, report.price, report.size, report.remaining, report.fee,
                report.liquidity,
            )  # fmt: skip
        if isinstance(report, OrderCancelled):
            return BrokerOrderCancelled(ts, now, account, oid, report.remaining, report.reason)
        return BrokerOrderRejected(ts, now, account, oid, report.reason, report.detail)


def _fixed(out: Output) -> np.ndarray[Any, Any]:
    assert isinstance(out, np.ndarray)
    return out
