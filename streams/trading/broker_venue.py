"""The venue as the ``trading`` stage sees it in live-broker mode (``venue = "broker"``).

Nothing is matched here. Orders and cancel requests leave through the stage's ``orders``
port (the order gateway hands them to the broker); what the broker answers comes back through
the session journal as ``broker.*`` events, which :meth:`BrokerVenue.deliver` turns into the
same ``executions.*`` reports the simulated venue would make, caused by the journal offset of
the broker event. The compiled loop still walks the journal for the clock, the book, the mid
and the daily loss floor; it has no orders to act on.
"""

from __future__ import annotations

from engine.events.broker import (
    BrokerOrderAcknowledged,
    BrokerOrderCancelled,
    BrokerOrderFilled,
    BrokerReport,
)
from engine.events.trading import (
    CancelRequested,
    OrderAcknowledged,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from streams.trading import matching as m
from streams.trading.execution import ExecutionConfig, Live, Venue, VenueReport


class BrokerVenue(Venue):
    """See the module docstring. ``live`` holds the orders the broker has not finished with."""

    def __init__(self, config: ExecutionConfig, value_factor: float) -> None:
        super().__init__(config, value_factor)
        self.pending: list[VenueReport] = []

    @property
    def busy(self) -> bool:
        """Never: nothing here waits to act on the book (the broker does that)."""
        return False

    def submit(self, order: OrderSubmitted) -> None:
        """Remember ``order`` until the broker is done with it; it leaves by the orders port."""
        reference = order.reference_mid if order.kind == "market" else float(order.price)
        self.live[order.order_id] = Live(order.side, order.purpose, reference)

    def cancel(self, request: CancelRequested) -> None:
        """Nothing to do here: the request leaves by the orders port; the broker answers."""

    def settle(self, index: int) -> None:
        """Nothing is due here: orders act at the broker."""

    def queue_ahead(self, order_id: int) -> int | None:
        """Unknown here: the broker holds the queue."""
        return None

    def deliver(self, report: BrokerReport, offset: int) -> None:
        """A broker report journaled at ``offset`` about one of our orders (others: ignored,
        as an order this run never sent cannot move its account)."""
        live = self.live.get(report.order_id)
        if live is None:
            return
        ts, oid = report.ts_event, report.order_id
        if isinstance(report, BrokerOrderAcknowledged):
            self.pending.append(OrderAcknowledged(ts, offset, oid, report.queue_ahead))
        elif isinstance(report, BrokerOrderFilled):
            if report.remaining == 0:
                del self.live[oid]
            self.st[m.S_POSITION] += live.side * report.size
            slippage = live.side * (report.price - live.reference_price) + 0.0  # never -0.0
            self.pending.append(
                OrderFilled(
                    ts,
                    offset,
                    oid,
                    live.side,
                    live.purpose,
                    report.price,
                    report.size,
                    report.remaining,
                    report.fee,
                    report.liquidity,
                    live.reference_price,
                    slippage,
                )
            )
        elif isinstance(report, BrokerOrderCancelled):
            del self.live[oid]
            self.pending.append(OrderCancelled(ts, offset, oid, report.remaining, report.reason))
        else:
            if report.reason != "too_late_to_cancel":
                del self.live[oid]
            self.pending.append(OrderRejected(ts, offset, oid, report.reason, report.detail))

    def reports(self, base_offset: int) -> list[VenueReport]:
        """The reports delivered since the last call (each already carries its cause)."""
        out, self.pending = self.pending, []
        return out
