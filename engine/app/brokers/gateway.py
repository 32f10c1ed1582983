"""The order gateway: where orders leave the pipeline for the broker.

The live runner hands it the ``orders`` port's events of each slice right after appending
them to the run's orders topic (which it flushes at once: what leaves the process is on disk
first). The gateway passes each to the broker in order and notes when. A resumed run re-emits
the orders it had emitted since its snapshot; those the previous process already handed over
(``handed``, counted from the orders topic before the resume) are not sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from engine.app.brokers.base import Broker
from engine.events.trading import CancelRequested, OrderSubmitted


@dataclass
class Handed:
    """One order or cancel handed to the broker, and when (local ns)."""

    event: OrderSubmitted | CancelRequested
    at: int


class OrderGateway:
    """See the module docstring."""

    def __init__(
        self,
        broker: Broker,
        handed: int = 0,
        clock: Callable[[], int] = time.perf_counter_ns,
        on_handed: Callable[[Handed], None] | None = None,
    ) -> None:
        self.broker = broker
        self.already = handed
        self.seen = 0
        self.sent = 0
        self.clock = clock
        self.on_handed = on_handed

    def send(self, events: list[msgspec.Struct]) -> None:
        """Hand one slice's ``orders`` events to the broker, in order."""
        for event in events:
            self.seen += 1
            if self.seen <= self.already:
                continue  # handed over before the restart
            if isinstance(event, OrderSubmitted):
                self.broker.submit(event)
            elif isinstance(event, CancelRequested):
                self.broker.cancel(event)
            else:
                continue
            self.sent += 1
            if self.on_handed is not None:
                self.on_handed(Handed(event, self.clock()))
