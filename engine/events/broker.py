"""Broker events: what a broker answered about our orders, journaled as it arrived.

In live-broker mode (``[stages.trading] venue = "broker"``) orders leave the pipeline through
the order gateway to a broker (the paper broker, or a real venue's adapter), and everything
the broker says comes back *into the session journal* as one of these events, so a replay
reproduces it exactly (DESIGN.md, principle 1). The ``trading`` stage turns each one whose
``account`` is its own into the matching ``executions.*`` event.

Like :mod:`engine.events.control` these are msgpack arrays whose first element is the type id.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class _BrokerEvent(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    ts_event: Annotated[int, _doc("when the broker or venue did it, ns since the epoch (UTC)")]
    ts_recv: Annotated[int, _doc("when Tapedeck received it from the broker, ns since the epoch")]
    account: Annotated[str, _doc("whose order: the run id of the live run that sent it")]
    order_id: Annotated[int, _doc("the run-local order id the order was sent with")]


class BrokerOrderAcknowledged(_BrokerEvent, tag=90, frozen=True):
    """The broker accepted an order at the venue."""

    queue_ahead: Annotated[
        int, _doc("size resting ahead of it at its price, size units (-1 unknown, 0 market)")
    ]


class BrokerOrderFilled(_BrokerEvent, tag=91, frozen=True):
    """The broker executed (part of) an order."""

    price: Annotated[int, _doc("execution price, price units")]
    size: Annotated[int, _doc("quantity executed, size units")]
    remaining: Annotated[int, _doc("quantity still open after this fill, size units")]
    fee: Annotated[float, _doc("fee charged, quote currency (negative: a rebate)")]
    liquidity: Annotated[str, _doc("maker (rested in the book) or taker")]


class BrokerOrderCancelled(_BrokerEvent, tag=92, frozen=True):
    """What was left of an order is no longer working at the broker."""

    remaining: Annotated[int, _doc("quantity that will never execute, size units")]
    reason: Annotated[str, _doc("requested, book_too_thin, position_closed, or the broker's")]


class BrokerOrderRejected(_BrokerEvent, tag=93, frozen=True):
    """The broker refused an order, or a cancel request that found nothing to cancel."""

    reason: Annotated[str, _doc("machine-readable reason code, e.g. too_late_to_cancel")]
    detail: Annotated[str, _doc("human-readable explanation, as the broker gave it")]


BrokerReport = (
    BrokerOrderAcknowledged | BrokerOrderFilled | BrokerOrderCancelled | BrokerOrderRejected
)
"""Anything a broker says about an order."""

BROKER_STRUCTS: tuple[tuple[str, type[_BrokerEvent]], ...] = (
    ("broker.order_acknowledged", BrokerOrderAcknowledged),
    ("broker.order_filled", BrokerOrderFilled),
    ("broker.order_cancelled", BrokerOrderCancelled),
    ("broker.order_rejected", BrokerOrderRejected),
)
"""(stable name, struct) of every broker event type; the tag is its type id."""
