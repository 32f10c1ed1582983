"""The ``execution`` processor: the simulated venue alone, for stages that send their own orders.

Inputs
    Port ``orders`` (``orders.order_submitted`` and ``orders.cancel_requested`` of an earlier
    stage), port ``book`` (``book.top``), port ``mid`` (``book.mid``) and the journal's market
    records (trades; adds, cancels and executions with order ids), all of the same slice.
    Control events move the clock only: ``clock.ticked`` to its time.
Outputs
    Port ``executions`` (``executions.*``): the venue's acknowledgements, fills, cancels and
    rejections, each caused by the journal event at which the venue acted.
State
    The venue's arrays (clock, book in effect, mid, orders in flight and working, queue
    positions) and the live orders' side, purpose and slippage base; :meth:`snapshot` writes
    them exactly.
Guarantees
    Deterministic and batch-independent: the venue's compiled loop
    (:mod:`streams.trading.matching`) walks journal events in offset order and stops after each
    event that caused orders, which are handed to the venue there, whatever the slicing. Pure.

The venue is :class:`~streams.trading.execution.Venue`, exactly as the ``trading`` stage
drives it, without risk or a portfolio: there are no timers, no loss floor, no protective
orders. An order's ``arrives_at`` (stamped by its sender) is when it reaches the venue; one
already due when it is handed over (``arrives_at`` at or before the clock) acts on the book of
the event that caused it. The venue holds at most ``CAPACITY`` (8) orders in flight or working
at once; a sender that exceeds it stops the run with an error that says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from engine.events.book import BOOK_MID, BOOK_TOP_DTYPE
from engine.events.control import InstrumentSpec
from engine.events.market import MARKET_RECORD
from engine.events.trading import EXECUTIONS_FAMILY, CancelRequested, OrderSubmitted
from engine.runtime.processor import Output, Port, Slice, StageContext, load_state
from engine.runtime.topology import ConfigError, Stage, typed_config
from streams.trading import matching as m
from streams.trading.config import ORDER_ID_VENUES, VENUE_FEES, contract_multiplier
from streams.trading.desk import clock_of
from streams.trading.execution import QUEUE_MODELS, ExecutionConfig, Market, Venue, market_slice

EXECUTIONS_PORT = Port("executions", EXECUTIONS_FAMILY)
STATE_VERSION = 1
_NO_TOPS = np.zeros(0, BOOK_TOP_DTYPE)
_NO_MIDS = np.zeros(0, BOOK_MID.dtype)
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class VenueConfig:
    """Settings of the ``execution`` stage (the venue's, less latency: senders stamp arrival)."""

    maker_fee_bp: float = 0.0
    """Fee on fills that rested in the book, basis points of notional (negative: rebate)."""
    taker_fee_bp: float = 0.0
    """Fee on fills that took liquidity, basis points of notional."""
    queue_model: str = "trades"
    """``fifo`` (exact, by venue order ids; needs L3 records) or ``trades`` (queue model)."""
    contract_multiplier: float = 1.0
    """Quote currency per price point per contract: what fees are computed on."""


def venue_defaults(spec: InstrumentSpec) -> dict[str, Any]:
    """The venue's fees and queue model for an instrument, as the ``trading`` stage has them."""
    maker, taker = VENUE_FEES.get(spec.venue, (0.0, 0.0))
    queue = "fifo" if spec.venue in ORDER_ID_VENUES else "trades"
    config = VenueConfig(maker, taker, queue, contract_multiplier(spec))
    return dataclasses.asdict(config)


def venue_config(stage_id: str, config: dict[str, Any]) -> VenueConfig:
    """``config`` as a :class:`VenueConfig`; a bad value raises :class:`ConfigError`."""
    parsed: VenueConfig = typed_config(VenueConfig, stage_id, config)
    problems = [
        f"{key} must be in -100..1000 basis points, got {getattr(parsed, key)}"
        for key in ("maker_fee_bp", "taker_fee_bp")
        if not -100.0 <= getattr(parsed, key) <= 1000.0
    ]
    if parsed.queue_model not in QUEUE_MODELS:
        problems.append(f"queue_model must be one of {QUEUE_MODELS}, got {parsed.queue_model!r}")
    if not parsed.contract_multiplier > 0:
        problems.append(f"contract_multiplier must be > 0, got {parsed.contract_multiplier}")
    if problems:
        raise ConfigError(f"stage {stage_id!r}: " + "; ".join(problems))
    return parsed


class _State(msgspec.Struct, array_like=True):
    version: int
    config: bytes
    venue: bytes


class ExecutionStage:
    """See the module docstring."""

    def __init__(self, context: StageContext) -> None:
        self.config = venue_config("execution", context.config)
        self.identity = msgspec.json.encode(dataclasses.asdict(self.config), order="sorted")
        spec = context.instrument
        factor = 10.0 ** -(spec.price_scale + spec.size_scale) * self.config.contract_multiplier
        c = self.config
        self.venue = Venue(
            ExecutionConfig(0.0, c.maker_fee_bp, c.taker_fee_bp, c.queue_model), factor
        )
        self.venue.st[m.S_WAKE] = _NEVER  # no timers: risk and marks are not this stage's

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """The venue's reports on the slice's journal events and the orders they caused."""
        orders: list[Any] = [*piece.inputs.get("orders", [])]  # msgpack events, in cause order
        tops = _fixed(piece.inputs.get("book"), _NO_TOPS)
        mids = _fixed(piece.inputs.get("mid"), _NO_MIDS)
        market = piece.market
        if market is None:  # control events: only the clock moves, and orders they caused
            market = np.zeros(len(piece), MARKET_RECORD)
            market["ts_event"] = [clock_of(e) for e in piece.control]
        causes = np.array(sorted({o.cause for o in orders}), np.int64)
        return (self._walk(market_slice(piece.start, market, tops, mids, causes), orders),)

    def _walk(self, market: Market, orders: list[Any]) -> list[msgspec.Struct]:
        venue, base = self.venue, market.base
        out: list[msgspec.Struct] = []
        venue.st[m.S_TP] = venue.st[m.S_MP] = venue.st[m.S_DP] = 0
        i, next_order = 0, 0
        while True:
            i, reason = venue.run(market, i)
            out += venue.reports(base)
            if reason == m.DONE:
                return out
            if reason == m.GROW:
                venue.grow()
                continue
            next_order = self._hand_over(orders, next_order, base + i, i)
            out += venue.reports(base)
            dp = int(venue.st[m.S_DP])
            if dp < len(market.decision_at) and market.decision_at[dp] == i:
                venue.st[m.S_DP] = dp + 1
            i += 1

    def _hand_over(self, orders: list[Any], j: int, cause: int, i: int) -> int:
        """Give the venue the orders caused by journal event ``cause`` (slice index ``i``)."""
        venue, due = self.venue, False
        while j < len(orders) and orders[j].cause == cause:
            order = orders[j]
            if isinstance(order, OrderSubmitted):
                venue.submit(order)
            elif isinstance(order, CancelRequested):
                venue.cancel(order)
            due = due or order.arrives_at <= venue.clock
            j += 1
        if due:
            venue.settle(i)
        return j

    def snapshot(self) -> bytes:
        """The venue, exactly."""
        return msgspec.msgpack.encode(_State(STATE_VERSION, self.identity, self.venue.snapshot()))

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced with the same config."""
        s = load_state("execution", state, _State, STATE_VERSION, self.identity)
        self.venue.restore(s.venue)

    def inspect(self) -> dict[str, Any]:
        """Clock, executed position and the orders the venue holds, readably."""
        venue = self.venue
        return {
            "clock": venue.clock,
            "position": venue.position,
            "orders": [
                f"{oid} {'buy' if live.side > 0 else 'sell'} {live.purpose}"
                + ("" if (ahead := venue.queue_ahead(oid)) is None else f", {ahead} ahead")
                for oid, live in sorted(venue.live.items())
            ],
        }


def _fixed(value: Output | None, empty: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if isinstance(value, np.ndarray) and len(value):
        return value
    return empty


EXECUTION_STAGE = Stage(
    "execution",
    ExecutionStage,
    (EXECUTIONS_PORT,),
    inputs=("orders", "book", "mid"),
    defaults=venue_defaults,
    doc="the simulated venue alone: orders of an earlier stage in, acks and fills out",
)
