"""Trading events: risk verdicts, orders, the simulated venue's reports, and the portfolio.

The ``trading`` processor (``streams.trading``, docs/trading.md) writes four ports:

* ``risk``: why a decision did not become the order it asked for (``risk.*``), when the daily
  loss circuit breaker tripped and when a venue trading day began;
* ``orders``: what the stage sent to the venue (``orders.*``): submissions and cancel requests;
* ``executions``: what the simulated venue answered (``executions.*``): acknowledgements,
  fills, cancellations and rejections;
* ``portfolio``: ``portfolio.state``, a fixed-width record after every fill and every mark
  interval of event time.

The first three are low rate: msgspec Structs encoded as msgpack arrays whose first element is
the type id (the tag), like :mod:`engine.events.control`. Each carries ``ts_event`` (the event
time it happened at) and ``cause`` (the journal offset whose processing produced it).
Prices and sizes are integers in the instrument's units (``price_scale``, ``size_scale``);
money is float64 in the quote currency. Order ids are run-local: 1, 2, 3... in submission
order, so a replay reproduces them.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np

from engine.events.types import Codec, EventType, FieldDoc, FieldSpec, fixed_dtype


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class _Derived(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    ts_event: Annotated[int, _doc("event time it happened at, ns since the Unix epoch (UTC)")]
    cause: Annotated[int, _doc("journal offset whose processing produced it (causation)")]


class DecisionRejected(_Derived, tag=110, frozen=True):
    """Risk refused a consensus decision: no order was sent for it."""

    decision_cause: Annotated[int, _doc("cause of the consensus.decision refused")]
    direction: Annotated[int, _doc("the decision's direction: +1 buy, -1 sell")]
    confidence: Annotated[float, _doc("the decision's confidence, 0..1")]
    reason: Annotated[str, _doc("machine-readable reason code (docs/trading.md lists them)")]
    detail: Annotated[str, _doc("human-readable explanation with the values compared")]
    value: Annotated[float, _doc("the value the rule tested (e.g. the confidence)")]
    limit: Annotated[float, _doc("the limit it was compared with (e.g. min_confidence)")]


class DecisionResized(_Derived, tag=111, frozen=True):
    """Risk sent a smaller order than the Kelly size the decision asked for."""

    decision_cause: Annotated[int, _doc("cause of the consensus.decision resized")]
    direction: Annotated[int, _doc("the decision's direction: +1 buy, -1 sell")]
    confidence: Annotated[float, _doc("the decision's confidence, 0..1")]
    requested: Annotated[int, _doc("Kelly size, rounded down to the lot, size units")]
    granted: Annotated[int, _doc("size sent after the cap, rounded down to the lot, size units")]
    reason: Annotated[str, _doc("machine-readable reason code, e.g. max_position")]
    detail: Annotated[str, _doc("human-readable explanation with the fractions compared")]


class CircuitBreakerTripped(_Derived, tag=112, frozen=True):
    """The day's loss reached the daily limit: open orders cancelled, position flattened, and
    no new entry until the next venue trading day."""

    trading_day: Annotated[str, _doc("the venue's local trading day, ISO date")]
    equity: Annotated[float, _doc("equity marked to mid when it tripped, quote currency")]
    day_start_equity: Annotated[float, _doc("equity at the start of the trading day")]
    loss: Annotated[float, _doc("(day_start_equity - equity) / day_start_equity")]
    limit: Annotated[float, _doc("the configured daily loss limit, as a fraction")]


class OrderSubmitted(_Derived, tag=113, frozen=True):
    """The stage sent an order to the (simulated) venue."""

    order_id: Annotated[int, _doc("run-local order id: 1, 2, 3... in submission order")]
    parent_id: Annotated[int, _doc("the entry order a protective order belongs to (0: none)")]
    side: Annotated[int, _doc("+1 buy, -1 sell")]
    kind: Annotated[str, _doc("market, limit or stop")]
    purpose: Annotated[str, _doc("entry, stop_loss, take_profit or exit")]
    price: Annotated[int, _doc("limit or stop price, price units (0 for market)")]
    size: Annotated[int, _doc("quantity, size units")]
    reduce_only: Annotated[bool, _doc("may only reduce the position (protective and exit)")]
    reference_mid: Annotated[float, _doc("mid when it was sent, price units (slippage base)")]
    arrives_at: Annotated[int, _doc("event time it reaches the venue: ts_event + latency")]


class CancelRequested(_Derived, tag=114, frozen=True):
    """The stage asked the venue to cancel what is left of an order."""

    order_id: Annotated[int, _doc("the order to cancel")]
    reason: Annotated[str, _doc("why: entry_timeout, circuit_breaker or flatten")]
    arrives_at: Annotated[int, _doc("event time the request reaches the venue")]


class OrderAcknowledged(_Derived, tag=115, frozen=True):
    """The venue accepted an order that reached it."""

    order_id: Annotated[int, _doc("the order accepted")]
    queue_ahead: Annotated[
        int, _doc("size resting ahead of it at its price, size units (-1 unknown, 0 market)")
    ]


class OrderFilled(_Derived, tag=116, frozen=True):
    """The venue executed (part of) an order."""

    order_id: Annotated[int, _doc("the order executed")]
    side: Annotated[int, _doc("+1 bought, -1 sold")]
    purpose: Annotated[str, _doc("entry, stop_loss, take_profit or exit")]
    price: Annotated[int, _doc("execution price, price units")]
    size: Annotated[int, _doc("quantity executed, size units")]
    remaining: Annotated[int, _doc("quantity still open after this fill, size units")]
    fee: Annotated[float, _doc("fee charged, quote currency (negative: a rebate)")]
    liquidity: Annotated[str, _doc("maker (rested in the book) or taker")]
    reference_price: Annotated[
        float,
        _doc(
            "what slippage is measured from: the mid when a market order was sent, a stop's "
            "stop price, a limit order's limit price (price units)"
        ),
    ]
    slippage: Annotated[
        float, _doc("side * (price - reference_price), price units: positive is worse")
    ]


class OrderCancelled(_Derived, tag=117, frozen=True):
    """What was left of an order is no longer working."""

    order_id: Annotated[int, _doc("the order cancelled")]
    remaining: Annotated[int, _doc("quantity that will never execute, size units")]
    reason: Annotated[str, _doc("requested, book_too_thin or position_closed (docs/trading.md)")]


class OrderRejected(_Derived, tag=118, frozen=True):
    """The venue refused an order, or a cancel request that found nothing to cancel."""

    order_id: Annotated[int, _doc("the order (or the order a cancel request named)")]
    reason: Annotated[str, _doc("machine-readable reason code (docs/trading.md lists them)")]
    detail: Annotated[str, _doc("human-readable explanation")]


class TradingDayStarted(_Derived, tag=119, frozen=True):
    """A venue trading day began: the trade count and circuit breaker start afresh."""

    trading_day: Annotated[str, _doc("the venue's local trading day, ISO date")]
    time_zone: Annotated[str, _doc("IANA zone the day is local to")]
    start_equity: Annotated[float, _doc("equity marked to mid at the day's first event")]


TRADING_STRUCTS: tuple[tuple[str, type[_Derived]], ...] = (
    ("risk.decision_rejected", DecisionRejected),
    ("risk.decision_resized", DecisionResized),
    ("risk.circuit_breaker_tripped", CircuitBreakerTripped),
    ("orders.order_submitted", OrderSubmitted),
    ("orders.cancel_requested", CancelRequested),
    ("executions.order_acknowledged", OrderAcknowledged),
    ("executions.order_filled", OrderFilled),
    ("executions.order_cancelled", OrderCancelled),
    ("executions.order_rejected", OrderRejected),
    ("risk.trading_day_started", TradingDayStarted),
)
"""(stable name, struct) of every trading msgpack type; the tag is its type id."""

# reason of portfolio.state
R_MARK = 1
"""Emitted because event time reached a mark boundary (a multiple of the mark interval)."""
R_FILL = 2
"""Emitted after a fill."""
R_CLOSE = 3
"""Emitted at ``session.closed``: the session's final state."""

_PORTFOLIO_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    ("reason", "u1", 2, "why it was emitted: 1 mark interval, 2 fill, 3 session closed"),
    ("ts_event", "<i8", 8, "the mark boundary (reason 1) or the event time (2, 3), ns (UTC)"),
    ("cause", "<u8", 16, "journal offset whose processing produced it"),
    ("position", "<i8", 24, "signed position, size units (+ long, - short)"),
    ("avg_price", "<f8", 32, "average entry price of the position, price units (0 if flat)"),
    ("mid", "<f8", 40, "mid the position is marked at, price units (NaN before any mid)"),
    ("realised", "<f8", 48, "realised PnL before fees since the run began, quote currency"),
    ("unrealised", "<f8", 56, "PnL of the open position marked to mid, quote currency"),
    ("fees", "<f8", 64, "fees paid since the run began, quote currency"),
    ("equity", "<f8", 72, "starting equity + realised + unrealised - fees"),
    ("peak_equity", "<f8", 80, "highest equity seen so far"),
    ("drawdown", "<f8", 88, "(peak_equity - equity) / peak_equity"),
    ("exposure", "<f8", 96, "|position| * mid * multiplier / equity (notional over equity)"),
)

PORTFOLIO_STATE = EventType(
    type_id=16,
    name="portfolio.state",
    version=1,
    codec=Codec.FIXED,
    doc="Position, PnL and equity of the simulated account, marked to mid: after every fill, "
    "at the first journal event at or past each `mark_interval_ms` boundary of event time "
    "(stamped with the boundary: the state in effect at that instant) and at session close. "
    "Emitted by the `trading` processor into `run.<run id>.portfolio`.",
    fields=tuple(FieldDoc(n, np.dtype(t).name, d, o) for n, t, o, d in _PORTFOLIO_FIELDS),
    dtype=fixed_dtype(_PORTFOLIO_FIELDS, 104),
)

TRADING_FIXED_TYPES: tuple[EventType, ...] = (PORTFOLIO_STATE,)


def family(name: str, doc: str) -> EventType:
    """The label of a port whose topic carries several msgpack types (each value has its tag).

    A family is not a catalogue entry: it names the topic's schema (``trading.risk``), as
    ``tapedeck.journal`` names a journal's.
    """
    return EventType(0, name, 1, Codec.MSGPACK, doc, ())


RISK_FAMILY = family("trading.risk", "risk.* events of the trading processor")
ORDERS_FAMILY = family("trading.orders", "orders.* events of the trading processor")
EXECUTIONS_FAMILY = family("trading.executions", "executions.* events of the simulated venue")


def new_states(n: int) -> np.ndarray[Any, np.dtype[Any]]:
    """``n`` zeroed ``portfolio.state`` records with the type id filled in."""
    assert PORTFOLIO_STATE.dtype is not None
    states = np.zeros(n, dtype=PORTFOLIO_STATE.dtype)
    states["type_id"] = PORTFOLIO_STATE.type_id
    return states
