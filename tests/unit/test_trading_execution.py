"""The simulated venue on hand-made markets: latency, market orders, both queue models,
crossings, stops, reduce-only orders, cancels, rejections and snapshots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from engine.events.trading import (
    OrderAcknowledged,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from streams.trading.execution import ExecutionConfig, Venue
from tests.trading_tape import MS, T0, Tape, cancel, drive_tape, order

FACTOR = 0.01  # price scale 2, whole shares
BIDS = [(9_990, 10)]
ASKS = [(10_000, 5)]


def venue(**config: Any) -> Venue:
    return Venue(ExecutionConfig(**config), FACTOR)


def send(o: OrderSubmitted) -> Callable[[Venue], None]:
    return lambda v: v.submit(o)


def brief(reports: list[msgspec.Struct]) -> list[tuple[Any, ...]]:
    """(type, cause, order id, and the fields that matter) of each report."""
    out: list[tuple[Any, ...]] = []
    for r in reports:
        if isinstance(r, OrderAcknowledged):
            out.append(("ack", r.cause, r.order_id, r.queue_ahead))
        elif isinstance(r, OrderFilled):
            out.append(("fill", r.cause, r.order_id, r.price, r.size, r.remaining, r.liquidity))
        elif isinstance(r, OrderCancelled):
            out.append(("cancel", r.cause, r.order_id, r.remaining, r.reason))
        else:
            assert isinstance(r, OrderRejected)
            out.append(("reject", r.cause, r.order_id, r.reason))
    return out


def test_market_order_walks_ten_levels_then_cancels_the_rest() -> None:
    tape = Tape()
    tape.book(BIDS, [(10_000 + 10 * j, 2) for j in range(10)])
    tape.tick()  # 1 ms later: the order arrives here
    v = venue(taker_fee_bp=10.0)
    reports = drive_tape(v, tape, {0: send(order(1, +1, "market", 25, ts=T0))})
    got = brief(reports)
    assert got[0] == ("ack", 1, 1, 0)
    assert got[1:11] == [
        ("fill", 1, 1, 10_000 + 10 * j, 2, 25 - 2 * (j + 1), "taker") for j in range(10)
    ]
    assert got[11] == ("cancel", 1, 1, 5, "book_too_thin")
    fill = reports[1]
    assert isinstance(fill, OrderFilled)
    assert fill.fee == pytest.approx(10_000 * 2 * FACTOR * 10 / 10_000)  # 10 bp of 200.00
    assert v.position == 20
    assert not v.busy


def test_an_order_acts_on_the_first_book_state_at_or_after_its_arrival() -> None:
    """Latency 5 ms: the asks at +1 ms and +3 ms are not there for it; the one at +5 ms is."""
    tape = Tape()
    tape.book(BIDS, ASKS)  # t0
    tape.book(BIDS, [(10_010, 5)], ts=T0 + 1 * MS)
    tape.book(BIDS, [(10_020, 5)], ts=T0 + 3 * MS)
    tape.book(BIDS, [(10_030, 5)], ts=T0 + 5 * MS)
    tape.book(BIDS, [(10_040, 5)], ts=T0 + 6 * MS)
    v = venue()
    got = brief(drive_tape(v, tape, {0: send(order(1, +1, "market", 3, ts=T0, latency=5 * MS))}))
    assert got == [("ack", 3, 1, 0), ("fill", 3, 1, 10_030, 3, 0, "taker")]


def test_zero_latency_acts_on_the_current_state() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS)
    tape.book(BIDS, [(10_010, 5)])
    got = brief(drive_tape(venue(), tape, {0: send(order(1, -1, "market", 3, ts=T0, latency=0))}))
    assert got == [("ack", 0, 1, 0), ("fill", 0, 1, 9_990, 3, 0, "taker")]


def test_market_orders_need_a_synced_book_and_liquidity() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS, status=0)  # not synced yet
    tape.book(BIDS, [])  # synced, no asks
    tape.tick()
    got = brief(
        drive_tape(
            venue(),
            tape,
            {
                0: send(order(1, +1, "market", 1, ts=T0, latency=0)),
                1: send(order(2, +1, "market", 1, ts=T0 + MS, latency=0)),
            },
        )
    )
    assert got == [("reject", 0, 1, "book_not_ready"), ("reject", 1, 2, "no_liquidity")]


def test_trades_queue_model() -> None:
    """Binance/B3 model: trades at our price eat the queue ahead, a level that shrinks without
    trades lost orders behind us unless it shrinks below our queue, growth queues behind us."""
    tape = Tape()
    tape.book([(9_990, 10)], ASKS)  # 0: we will join behind 10
    tape.tick()  # 1: arrival
    tape.trade(9_990, 3, -1)  # 2: seller hits 3 of the 10 ahead -> 7
    tape.trade(9_990, 50, +1)  # 3: a buyer at our price takes asks, not us
    tape.book([(9_990, 7)], ASKS)  # 4: the book catches up with the trade: still 7
    tape.book([(9_990, 12)], ASKS)  # 5: 5 more join behind us
    tape.book([(9_990, 4)], ASKS)  # 6: 8 cancelled: at least 3 of them were ahead -> 4
    tape.trade(9_990, 6, -1)  # 7: 4 ahead go, 2 fill us
    tape.trade(9_980, 1, -1)  # 8: traded through our price: fills 1
    tape.book([(9_980, 3)], [(9_990, 5)])  # 9: the ask reaches our price: fills the last 1
    v = venue(maker_fee_bp=-1.0)
    queue = []
    actions = {0: send(order(1, +1, "limit", 4, 9_990, ts=T0))}
    for i in range(1, 9):
        actions[i] = lambda v: queue.append(v.queue_ahead(1))
    reports = drive_tape(v, tape, actions)
    assert queue == [10, 7, 7, 7, 7, 4, 0, 0]
    assert brief(reports) == [
        ("ack", 1, 1, 10),
        ("fill", 7, 1, 9_990, 2, 2, "maker"),
        ("fill", 8, 1, 9_990, 1, 1, "maker"),
        ("fill", 9, 1, 9_990, 1, 0, "maker"),
    ]
    rebate = reports[1]
    assert isinstance(rebate, OrderFilled)
    assert rebate.fee == pytest.approx(-9_990 * 2 * FACTOR / 10_000)  # a 1 bp rebate
    assert rebate.slippage == 0.0  # a limit fills at its price


def test_crossing_fills_once_per_episode_and_marketable_limits_take_first() -> None:
    tape = Tape()
    tape.book([(9_990, 10)], [(10_000, 5)])  # 0
    tape.tick()  # 1: order 1 (sell 4 @ 10_010) arrives; order 2 (buy 8 @ 10_000) arrives
    tape.book([(10_010, 3)], [(10_020, 5)])  # 2: the bid reaches 10_010: order 1 gets 3
    tape.book([(10_010, 9)], [(10_020, 5)])  # 3: still crossed: the same episode, no fill
    tape.book([(10_000, 9)], [(10_020, 5)])  # 4: the episode ends
    tape.book([(10_015, 2)], [(10_020, 5)])  # 5: a new one: the last 1
    reports = drive_tape(
        venue(),
        tape,
        {
            0: lambda v: (
                v.submit(order(1, -1, "limit", 4, 10_010, ts=T0)),
                v.submit(order(2, +1, "limit", 8, 10_000, ts=T0)),
            )
        },
    )
    assert brief(reports) == [
        ("ack", 1, 1, -1),  # deeper than the one ask level shown: unknown
        ("ack", 1, 2, 0),  # an empty level inside the spread: nothing ahead
        ("fill", 1, 2, 10_000, 5, 3, "taker"),  # marketable: takes the 5 offered, rests 3
        ("fill", 2, 1, 10_010, 3, 1, "maker"),
        ("fill", 5, 1, 10_010, 1, 0, "maker"),
    ]


def test_fifo_queue_by_order_ids() -> None:
    """LOBSTER model: exactly the orders resting before us are ahead; their cancels and
    executions shrink the queue; orders added later are behind and their execution fills us;
    hidden executions at our price do not touch the displayed queue."""
    tape = Tape()
    tape.order(2, +1, 9_990, 10, oid=101)  # 0: A
    tape.order(2, +1, 9_990, 20, oid=102)  # 1: B
    tape.book([(9_990, 30)], ASKS)  # 2
    tape.tick()  # 3: we arrive behind 30
    tape.order(2, +1, 9_990, 7, oid=103)  # 4: C, behind us
    tape.order(3, +1, 9_990, 5, oid=102)  # 5: B cancels 5 -> 25 ahead
    tape.order(5, +1, 9_990, 10, oid=101)  # 6: A executed -> 15
    tape.order(4, +1, 9_990, 7, oid=103)  # 7: C deleted: it was behind, still 15
    tape.hidden(9_990, 50, -1)  # 8: hidden liquidity at our price: still 15
    tape.order(5, +1, 9_990, 15, oid=102)  # 9: B executed -> 0
    tape.order(2, +1, 9_990, 9, oid=104)  # 10: D, behind
    tape.order(5, +1, 9_990, 3, oid=104)  # 11: D executed: we were first -> fill 3
    tape.order(5, -1, 10_000, 1, oid=999)  # 12: an ask executed: nothing to do with us
    tape.order(5, +1, 9_980, 2, oid=998)  # 13: a bid below ours executed: through -> 1
    v = venue(queue_model="fifo")
    queue = []
    actions = {2: send(order(1, +1, "limit", 4, 9_990, ts=T0 + 2 * MS))}
    for i in range(3, 13):
        actions[i] = lambda v: queue.append(v.queue_ahead(1))
    reports = drive_tape(v, tape, actions)
    assert queue == [30, 30, 25, 15, 15, 15, 0, 0, 0, 0]
    assert brief(reports) == [
        ("ack", 3, 1, 30),
        ("fill", 11, 1, 9_990, 3, 1, "maker"),
        ("fill", 13, 1, 9_990, 1, 0, "maker"),
    ]


def test_fifo_grows_its_memory_of_later_orders() -> None:
    tape = Tape()
    tape.book([(9_990, 1)], ASKS)
    tape.tick()
    for j in range(200):  # more joiners than the venue first has room for
        tape.order(2, +1, 9_990, 1, oid=1_000 + j)
    tape.order(5, +1, 9_990, 1, oid=1_000)  # 202: the first joiner executes: so did we
    v = venue(queue_model="fifo")
    reports = drive_tape(v, tape, {0: send(order(1, +1, "limit", 2, 9_990, ts=T0))})
    assert brief(reports)[-1] == ("fill", 202, 1, 9_990, 1, 1, "maker")
    assert v.behind.shape[1] >= 200


def test_stops_trigger_on_the_mid_or_on_trades_then_take_liquidity() -> None:
    tape = Tape()
    tape.book([(9_990, 10)], [(10_000, 10)])  # 0: mid 99.95
    tape.tick()  # 1: both stops arrive
    tape.trade(10_050, 1, +1)  # 2: a print at the buy stop triggers it (the mid has not moved)
    tape.book([(9_940, 10)], [(9_960, 10)])  # 3: mid 99.50 <= the sell stop's 99.50
    reports = drive_tape(
        venue(),
        tape,
        {
            0: lambda v: (
                v.submit(order(1, +1, "stop", 2, 10_050, ts=T0)),
                v.submit(order(2, -1, "stop", 3, 9_950, ts=T0)),
            )
        },
    )
    assert brief(reports) == [
        ("ack", 1, 1, -1),
        ("ack", 1, 2, -1),
        ("fill", 2, 1, 10_000, 2, 0, "taker"),
        ("fill", 3, 2, 9_940, 3, 0, "taker"),
    ]
    stop_fill = reports[3]
    assert isinstance(stop_fill, OrderFilled)
    assert stop_fill.slippage == 10.0  # 10 price units worse than the stop price


def test_reduce_only_orders_never_exceed_the_position_and_go_when_it_is_flat() -> None:
    tape = Tape()
    tape.book([(9_990, 10)], [(10_000, 10)])  # 0
    tape.tick()  # 1: buy 5 fills; a sell stop and a sell limit for 8 (more than held) arrive
    tape.trade(10_110, 3, +1)  # 2: a buyer through our 101.00 target: fills 3 of 5
    tape.book([(10_120, 10)], [(10_130, 10)])  # 3: bid through our target: the last 2
    tape.tick()  # 4: a late exit arrives with nothing to reduce
    v = venue()
    reports = drive_tape(
        v,
        tape,
        {
            0: lambda v: (
                v.submit(order(1, +1, "market", 5, ts=T0)),
                v.submit(order(2, -1, "stop", 8, 9_900, ts=T0, reduce_only=True)),
                v.submit(order(3, -1, "limit", 8, 10_100, ts=T0, reduce_only=True)),
            ),
            3: send(order(4, -1, "market", 5, ts=T0 + 3 * MS, reduce_only=True)),
        },
    )
    assert brief(reports) == [
        ("ack", 1, 1, 0),
        ("fill", 1, 1, 10_000, 5, 0, "taker"),
        ("ack", 1, 2, -1),
        ("ack", 1, 3, -1),  # deeper than the ten levels shown: queue unknown
        ("fill", 2, 3, 10_100, 3, 5, "maker"),
        ("fill", 3, 3, 10_100, 2, 3, "maker"),  # only the 2 still held
        ("cancel", 3, 2, 8, "position_closed"),  # flat: one cancels the other
        ("cancel", 3, 3, 3, "position_closed"),
        ("cancel", 4, 4, 5, "position_closed"),
    ]
    assert v.position == 0


def test_cancel_requests_and_too_late_cancels() -> None:
    tape = Tape()
    tape.book(BIDS, ASKS)  # 0
    tape.tick()  # 1: the limit arrives
    tape.tick()  # 2: the cancel arrives
    tape.tick()  # 3: a second cancel finds nothing
    reports = drive_tape(
        venue(),
        tape,
        {
            0: send(order(1, +1, "limit", 4, 9_980, ts=T0)),
            1: lambda v: v.cancel(cancel(1, ts=T0 + MS)),
            2: lambda v: v.cancel(cancel(1, ts=T0 + 2 * MS)),
        },
    )
    assert brief(reports) == [
        ("ack", 1, 1, -1),  # below the one bid level shown: unknown
        ("cancel", 2, 1, 4, "requested"),
        ("reject", 3, 1, "too_late_to_cancel"),
    ]


def test_snapshot_restore_mid_order() -> None:
    tape = Tape()
    tape.book([(9_990, 10)], ASKS)
    tape.tick()
    tape.trade(9_990, 4, -1)
    v = venue(queue_model="fifo")
    drive_tape(v, tape, {0: send(order(1, +1, "limit", 4, 9_990, ts=T0))})
    state = v.snapshot()
    fresh = venue(queue_model="fifo")
    fresh.restore(state)
    assert fresh.snapshot() == state
    assert fresh.queue_ahead(1) == 6
    assert fresh.working(1)


def test_the_compiled_loop_reads_the_catalogue_layouts() -> None:
    """The kernel reads records as 8-byte words at fixed positions: they must be where the
    catalogue puts the fields."""
    from engine.events.book import BOOK_MID, BOOK_TOP_DTYPE, S_STALE, S_SYNCED
    from engine.events.market import (
        F_HIDDEN,
        MARKET_RECORD,
        ORDER_ADDED,
        ORDER_CANCELLED,
        ORDER_DELETED,
        ORDER_EXECUTED,
        TRADE,
    )
    from streams.trading import matching as k

    def byte(dtype: Any, name: str) -> int:
        return int(dtype.fields[name][1])

    assert BOOK_TOP_DTYPE.itemsize == 8 * k.TOP_WORDS
    assert byte(BOOK_TOP_DTYPE, "offset") == 8 * k.T_OFFSET
    assert byte(BOOK_TOP_DTYPE, "status") == 2  # bits 16-23 of word 0
    for name, word in (("bid_price", k.BID_P), ("bid_size", k.BID_S)):
        assert byte(BOOK_TOP_DTYPE, name) == 8 * word
    for name, word in (("ask_price", k.ASK_P), ("ask_size", k.ASK_S)):
        assert byte(BOOK_TOP_DTYPE, name) == 8 * word
    assert byte(BOOK_MID.dtype, "cause") == 8 * k.M_CAUSE
    assert byte(BOOK_MID.dtype, "mid") == 8 * k.M_MID
    assert byte(BOOK_MID.dtype, "two_sided") == 2
    for name, word in (("ts_event", k.R_TS), ("price", k.R_PRICE), ("size", k.R_SIZE)):
        assert byte(MARKET_RECORD, name) == 8 * word
    assert byte(MARKET_RECORD, "id") == 8 * k.R_ID
    assert (byte(MARKET_RECORD, "side"), byte(MARKET_RECORD, "flags")) == (2, 3)
    assert (k.SYNCED, k.STALE, k.HIDDEN) == (S_SYNCED, S_STALE, F_HIDDEN)
    types = (TRADE, ORDER_ADDED, ORDER_CANCELLED, ORDER_DELETED, ORDER_EXECUTED)
    assert [t.type_id for t in types] == [
        k.T_TRADE, k.T_ADDED, k.T_CANCELLED, k.T_DELETED, k.T_EXECUTED,
    ]  # fmt: skip
