"""What a broker adapter is to Tapedeck: orders in, reports out through the journal.

An adapter for a real venue implements :class:`Broker`: ``submit`` and ``cancel`` send what
the pipeline decided (``orders.order_submitted`` / ``orders.cancel_requested``, with the
run-local order id as the client order id); everything the venue answers about those orders
(acknowledgements, fills, cancels, rejections) becomes ``broker.*`` events handed to the
:data:`ReportSink` it was built with, which journals them, so replay reproduces them exactly.
``on_journal`` shows it the session's events as they are journaled (the paper broker fills
against that market; a real venue's adapter has no use for it). Calls come from the live
session's event loop thread; an adapter that hears from its venue on another thread hands
reports over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.events.broker import BrokerReport
from engine.events.trading import CancelRequested, OrderSubmitted
from engine.runtime.processor import Slice

ReportSink = Callable[[list[BrokerReport]], None]
"""Journals broker reports (the live session's journal)."""


class Broker(Protocol):
    """See the module docstring."""

    name: str

    def submit(self, order: OrderSubmitted) -> None:
        """Send an order to the venue."""

    def cancel(self, request: CancelRequested) -> None:
        """Ask the venue to cancel what is left of an order."""

    def on_journal(self, pieces: list[Slice]) -> None:
        """The session's events just journaled, in order."""

    def close(self) -> None:
        """Stop: no more orders will come."""
