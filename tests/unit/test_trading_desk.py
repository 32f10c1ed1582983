"""Risk, venue and portfolio together on hand-made markets: entries, protective orders and
one-cancels-other, exits, trades per day across midnight, the circuit breaker, halts, limit
entries that time out, marks, and zero latency."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from engine.events.control import HaltTrading, InstrumentSpec, ResumeTrading
from engine.events.trading import (
    R_FILL,
    R_MARK,
    CancelRequested,
    CircuitBreakerTripped,
    DecisionRejected,
    DecisionResized,
    OrderCancelled,
    OrderFilled,
    OrderSubmitted,
    TradingDayStarted,
)
from streams.trading.config import trading_config, trading_defaults
from streams.trading.desk import Desk, Outputs
from streams.trading.portfolio import states_array
from tests.trading_tape import MS, T0, Tape

SPEC = InstrumentSpec("TEST", "TEST", "UTC", 2, 0, 5, 1, "USD")
BIDS, ASKS = [(9_990, 1000)], [(10_000, 1000)]
HOUR = 3600 * 1000 * MS


def desk(**config: Any) -> Desk:
    return Desk(trading_config("trading", {**trading_defaults(SPEC), **config}), SPEC)


def walk(d: Desk, tape: Tape) -> Outputs:
    market, decisions = tape.market()
    d.walk(market, decisions)
    out = d.take()
    return out._replace(portfolio=states_array(out.portfolio))


def of(events: list[msgspec.Struct], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_entry_then_stop_loss_and_take_profit_one_cancels_the_other() -> None:
    """Kelly at p = 0.62 (4.3 % of 100,000 at mid 99.95: 43 shares); the entry fills at the
    100.00 ask, the stop goes 0.5 % below (99.50) and the target 1 % above (101.00); a buyer
    through 101.00 fills the target and the venue drops the stop."""
    tape = Tape()
    tape.book(BIDS, ASKS)  # 0
    tape.decide(+1, 0.62)
    tape.tick()  # 1: the entry arrives and fills
    tape.tick()  # 2: stop and target arrive
    tape.trade(10_110, 100, +1)  # 3
    d = desk()
    out = walk(d, tape)
    entry, stop, target = of(out.orders, OrderSubmitted)
    assert (entry.kind, entry.purpose, entry.side, entry.size, entry.cause) == (
        "market",
        "entry",
        1,
        43,
        0,
    )
    assert (stop.kind, stop.purpose, stop.side, stop.price, stop.size) == (
        "stop",
        "stop_loss",
        -1,
        9_950,
        43,
    )
    assert (target.kind, target.purpose, target.price, target.parent_id) == (
        "limit",
        "take_profit",
        10_100,
        1,
    )
    assert stop.parent_id == 1
    assert stop.reduce_only
    assert target.reduce_only
    assert stop.cause == 1
    assert stop.arrives_at == T0 + 2 * MS
    fills = of(out.executions, OrderFilled)
    assert [(f.order_id, f.price, f.size, f.liquidity) for f in fills] == [
        (1, 10_000, 43, "taker"),
        (3, 10_100, 43, "maker"),
    ]
    (dropped,) = of(out.executions, OrderCancelled)
    assert (dropped.order_id, dropped.reason, dropped.cause) == (2, "position_closed", 3)
    last = out.portfolio[-1]
    assert (int(last["position"]), float(last["realised"])) == (0, pytest.approx(43.0))
    assert d.venue.position == d.account.position == 0
    assert not d.venue.busy


def test_opposite_decision_exits_and_trades_per_day_reset_at_midnight() -> None:
    """Two entries allowed a day: long, exit, short, exit, then a third entry is refused until
    the UTC day changes."""
    tape = Tape()
    tape.book(BIDS, ASKS)  # 0
    tape.decide(+1, 0.9)  # entry 1
    for _ in range(2):
        tape.tick()
    tape.tick()  # 3
    tape.decide(-1, 0.9)  # exit
    tape.tick()
    tape.tick()  # 5
    tape.decide(-1, 0.9)  # entry 2 (short)
    tape.tick()
    tape.tick()
    tape.tick()  # 8
    tape.decide(+1, 0.9)  # exit
    tape.tick()
    tape.tick()  # 10
    tape.decide(+1, 0.9)  # refused: max_trades_per_day
    tape.tick()  # 11
    tape.decide(+1, 0.9)  # refused again
    tape.tick(ts=T0 + 2 * HOUR)  # 12: 00:13:20 the next UTC day
    tape.decide(+1, 0.9)  # entry 3
    d = desk(max_trades_per_day=2)
    out = walk(d, tape)
    purposes = [(o.cause, o.purpose, o.side) for o in of(out.orders, OrderSubmitted)]
    assert [p for p in purposes if p[1] in ("entry", "exit")] == [
        (0, "entry", 1),
        (3, "exit", -1),
        (5, "entry", -1),
        (8, "exit", 1),
        (12, "entry", 1),
    ]
    refused = of(out.risk, DecisionRejected)
    assert [(r.cause, r.reason, r.value, r.limit) for r in refused] == [
        (10, "max_trades_per_day", 2.0, 2.0),
        (11, "max_trades_per_day", 2.0, 2.0),
    ]
    days = of(out.risk, TradingDayStarted)
    assert [(day.trading_day, day.cause) for day in days] == [
        ("2023-11-14", 0),
        ("2023-11-15", 12),
    ]
    assert days[1].start_equity == d.account.equity(d.mid)  # flat since the second exit


def test_decisions_of_direction_zero_are_not_orders() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS)
    tape.decide(0, 0.99)
    tape.tick()
    out = walk(desk(), tape)
    assert out.orders == []
    assert of(out.risk, DecisionRejected) == []


def test_kelly_cap_and_lots_are_reported() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS)
    tape.decide(+1, 0.9)  # Kelly asks 8.5 % = 85 shares; the 5 % cap grants 50; lots of 20: 40
    out = walk(desk(lot_size=20), tape)
    (resized,) = of(out.risk, DecisionResized)
    assert (resized.requested, resized.granted, resized.reason) == (80, 40, "max_position")
    assert of(out.orders, OrderSubmitted)[0].size == 40


def test_circuit_breaker_flattens_and_stops_the_day() -> None:
    """A big long (Kelly 81.7 % with the cap at 90 %) and a 2 % fall: the 1 % daily loss limit
    trips, the position is closed, entries are refused until the next day."""
    tape = Tape()
    tape.book(BIDS, ASKS)  # 0
    tape.decide(+1, 0.9)
    tape.tick()  # 1: 817 bought at 100.00
    tape.tick()  # 2
    tape.book([(9_790, 1000)], [(9_800, 1000)])  # 3: mid 97.95: equity -1,675 < 99,000
    tape.tick()  # 4: the exit sells at 97.90
    tape.decide(+1, 0.9)
    tape.tick(ts=T0 + 2 * HOUR)  # 5: the next day
    tape.decide(+1, 0.9)
    config = {
        "max_position_pct": 90.0,
        "kelly_fraction": 1.0,
        "stop_loss_pct": 50.0,
        "take_profit_pct": 60.0,
        "daily_loss_pct": 1.0,
    }
    d = desk(**config)
    out = walk(d, tape)
    (trip,) = of(out.risk, CircuitBreakerTripped)
    assert trip.cause == 3
    assert trip.day_start_equity == 100_000.0
    assert trip.limit == 0.01
    assert trip.loss == pytest.approx((100_000.0 - trip.equity) / 100_000.0)
    assert trip.equity == pytest.approx(100_000 + 817 * (97.95 - 100.0))
    exits = [o for o in of(out.orders, OrderSubmitted) if o.purpose == "exit"]
    assert [(o.cause, o.size, o.side) for o in exits] == [(3, 817, -1)]
    refused = of(out.risk, DecisionRejected)
    assert [(r.cause, r.reason) for r in refused] == [(4, "circuit_breaker")]
    entries = [o for o in of(out.orders, OrderSubmitted) if o.purpose == "entry"]
    assert [o.cause for o in entries] == [0, 5]
    assert [c.reason for c in of(out.executions, OrderCancelled)] == [
        "position_closed",
        "position_closed",
    ]


def test_operator_halt_refuses_decisions_until_resumed() -> None:
    d = desk()
    d.control(HaltTrading(ts_event=T0, ts_recv=T0, reason="test", operator="me"), 0)
    tape = Tape()
    tape.book(BIDS, ASKS)
    tape.decide(+1, 0.9)
    out = walk(d, tape)
    assert [r.reason for r in of(out.risk, DecisionRejected)] == ["halted"]
    d.control(ResumeTrading(ts_event=T0, ts_recv=T0, operator="me"), 0)
    tape = Tape(base=1)
    tape.book(BIDS, ASKS, ts=T0 + MS)
    tape.decide(+1, 0.9)
    out = walk(d, tape)
    assert [o.purpose for o in of(out.orders, OrderSubmitted)] == ["entry"]


def test_limit_entry_joins_the_touch_and_is_cancelled_when_it_times_out() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS)  # 0
    tape.decide(+1, 0.9)
    for _ in range(3):
        tape.tick()  # 1..3
    tape.decide(+1, 0.9)  # refused: the entry is still working
    for _ in range(5):
        tape.tick()  # 4..8: the deadline (5 ms) passes at 5, the cancel arrives at 6
    d = desk(entry_order="limit", entry_timeout_ms=5)
    out = walk(d, tape)
    (entry,) = of(out.orders, OrderSubmitted)
    assert (entry.kind, entry.price) == ("limit", 9_990)
    (timeout,) = of(out.orders, CancelRequested)
    assert (timeout.reason, timeout.ts_event, timeout.cause) == ("entry_timeout", T0 + 5 * MS, 5)
    (gone,) = of(out.executions, OrderCancelled)
    assert (gone.order_id, gone.reason, gone.cause, gone.remaining) == (1, "requested", 6, 50)
    assert [r.reason for r in of(out.risk, DecisionRejected)] == ["order_pending"]
    assert d.account.position == 0
    assert not d.venue.busy


def test_marks_are_stamped_with_their_boundary() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS, ts=T0 + 200 * MS)  # 0: the first event: a mark at T0 (a boundary)
    tape.decide(+1, 0.62)
    tape.tick(ts=T0 + 900 * MS)  # 1
    tape.tick(ts=T0 + 1_000 * MS)  # 2: exactly a boundary
    tape.tick(ts=T0 + 4_500 * MS)  # 3: skips 2 s and 3 s: one mark, at 4 s
    out = walk(desk(), tape)
    marks = [p for p in out.portfolio if p["reason"] == R_MARK]
    assert [(int(p["ts_event"]) - T0, int(p["cause"])) for p in marks] == [
        (0, 0),
        (1_000 * MS, 2),
        (4_000 * MS, 3),
    ]
    assert marks[0]["position"] == 0  # the state before the first event
    assert marks[1]["position"] == 43
    fills = [p for p in out.portfolio if p["reason"] == R_FILL]
    assert [int(p["cause"]) for p in fills] == [1]


def test_zero_latency_acts_within_the_deciding_event() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS)
    tape.decide(+1, 0.62)
    out = walk(desk(latency_ms=0.0), tape)
    assert [(type(e).__name__, e.cause) for e in out.executions] == [
        ("OrderAcknowledged", 0),
        ("OrderFilled", 0),
        ("OrderAcknowledged", 0),
        ("OrderAcknowledged", 0),
    ]
