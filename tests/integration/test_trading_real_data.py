"""The ``trading`` stage on the real samples: queue positions against the L3 messages (LOBSTER)
and the trades model (Binance), every decision accounted for, latency, fills against the book,
portfolio reconciliation, the report, and slicing / restart independence."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events.trading import (
    DecisionRejected,
    DecisionResized,
    OrderAcknowledged,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    TradingDayStarted,
)
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner
from engine.runtime.runs import session_opened
from streams.trading import build_report
from streams.trading.config import contract_multiplier
from streams.trading.execution import ExecutionConfig, Venue, market_slice
from tests.conftest import SAMPLES
from tests.sliced import Chains, resumed_chains, sliced_chains, topology
from tests.trading_support import PIPELINES, Outputs, RealMarket, real_market, run_trading
from tests.trading_tape import drive, order

SESSIONS = ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo")
TRADING = {"stop_loss_pct": 0.02, "take_profit_pct": 0.03, "starting_equity": 2_000_000.0}
CONFIGS = {
    "market": {"decisions": {"every": 25}, "trading": TRADING},
    "limit": {
        "decisions": {"every": 15},
        "trading": {**TRADING, "entry_order": "limit", "entry_timeout_ms": 10_000},
    },
}


@pytest.fixture(scope="module")
def runs(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        (session, name): run_trading(
            samples_master, session, tmp_path_factory.mktemp(f"{session}-{name}"), stages
        )
        for session in SESSIONS
        for name, stages in CONFIGS.items()
    }


# -- queue position on real books --------------------------------------------------------------


def _lobster(name: str) -> list[list[int]]:
    with gzip.open(SAMPLES / f"lobster_AAPL_2012-06-21_{name}_10.csv.gz", "rt") as f:
        return [[int(x) for x in row[1:]] if name == "message" else [int(x) for x in row]
                for row in csv.reader(f)]  # fmt: skip


def fifo_reference(join: int, price: int, size: int) -> tuple[list[int], list[tuple[int, int]]]:
    """A buy limit joining the bid at ``price`` after LOBSTER message row ``join``, straight
    from the message and orderbook files: (queue ahead after each later row, fills as
    (row, size)). Orders resting at our price before us are ahead; adds after us are behind."""
    messages, books = _lobster("message"), _lobster("orderbook")
    bids = [dict(zip(b[2::4], b[3::4], strict=True)) for b in books]
    ahead, behind, left = bids[join].get(price, 0), set(), size
    queue, fills, crossed = [ahead], [], False
    for row in range(join + 1, len(messages)):
        kind, oid, qty, p, direction = messages[row]
        if direction == 1 and p == price and kind == 1:
            behind.add(oid)
        elif direction == 1 and p == price and kind == 4 and oid in behind:
            fills.append((row, min(left, qty)))
            ahead = 0
        elif direction == 1 and p == price and kind in (2, 3, 4) and oid not in behind:
            ahead = max(0, ahead - qty)
        elif direction == 1 and p < price and kind in (4, 5):
            fills.append((row, min(left, qty)))  # a bid below ours executed: we went first
        left -= sum(f for r, f in fills if r == row)
        book = books[row]
        if price >= min(book[2::4]):
            ahead = min(ahead, bids[row].get(price, 0))
        crossing = sum(s for a, s in zip(book[0::4], book[1::4], strict=True) if a <= price)
        if crossing and not crossed and left:
            fills.append((row, min(left, crossing)))
            left -= fills[-1][1]
        crossed = crossing > 0
        queue.append(ahead)
        if left == 0:
            break
    return queue, fills


@pytest.fixture(scope="module")
def aapl(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> RealMarket:
    return real_market(samples_master, "demo-aapl", tmp_path_factory.mktemp("aapl-book"))


def _queue_trace(
    market: RealMarket, stops: np.ndarray[Any, Any], submitted: Any, config: ExecutionConfig
) -> tuple[list[Any], list[int | None]]:
    """Drive a venue over the real market, sending ``submitted`` with zero latency right after
    record ``stops[0]`` and reading its queue ahead after each record of ``stops``."""
    m = market_slice(market.base, market.records, market.tops, market.mids, market.base + stops)
    venue = Venue(config, 1e-4)
    queue: list[int | None] = []
    actions = {int(i): (lambda v: queue.append(v.queue_ahead(submitted.order_id))) for i in stops}

    def join(v: Venue) -> None:
        v.submit(submitted)
        v.settle(int(stops[0]))
        queue.append(v.queue_ahead(submitted.order_id))

    actions[int(stops[0])] = join
    reports = drive(venue, m, market.base, actions)
    return reports, queue


def _messages(market: RealMarket) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Per LOBSTER message (row of the files): the index of its record, and of its last record
    (the message's own, or the last depth correction the importer wrote after it, which is
    where the book after the message is)."""
    kind = market.records["type_id"]
    own = np.flatnonzero((kind != 8) & (kind != 6))
    return own, np.r_[own[1:] - 1, len(kind) - 1]


def test_fifo_queue_position_follows_the_l3_messages(aapl: RealMarket) -> None:
    """Hand-derived: after message 161 (09:30:01.17) the best bid is 585.47 with one order of
    100 shares (id 16337151) resting. We join it with 50 shares: 100 ahead. Message 169
    deletes that order: nobody ahead. Message 193 adds 18 shares (id 16396043) behind us;
    message 203 executes them, so we were filled first: 18. Messages 204 and 205 execute bids
    below ours (585.46 visible, 585.45 hidden): 5, then our last 27."""
    own, last = _messages(aapl)
    join_row = 160  # 0-based row of message 161
    rows = _lobster("message")
    for row in (160, 168, 192, 202, 203, 204):  # the journal holds the messages in order
        rec = aapl.records[own[row]]
        assert (int(rec["size"]), int(rec["price"])) == (rows[row][2], rows[row][3])
    price = 5_854_700
    submitted = order(1, +1, "limit", 50, price, ts=int(aapl.records[own[join_row]]["ts_event"]),
                      latency=0)  # fmt: skip
    reports, queue = _queue_trace(
        aapl, last[join_row:205], submitted, ExecutionConfig(queue_model="fifo")
    )
    row_of = {int(r): i for i, r in enumerate(own)}
    ack = reports[0]
    assert isinstance(ack, OrderAcknowledged)
    assert ack.queue_ahead == 100
    fills = [r for r in reports if isinstance(r, OrderFilled)]
    assert [(row_of[f.cause - aapl.base], f.size, f.price) for f in fills] == [
        (202, 18, price),
        (203, 5, price),
        (204, 27, price),
    ]
    assert all(f.liquidity == "maker" for f in fills)
    expected_queue, expected_fills = fifo_reference(join_row, price, 50)
    assert expected_fills == [(202, 18), (203, 5), (204, 27)]
    assert queue[: len(expected_queue) - 1] == expected_queue[:-1]
    assert queue[len(expected_queue) - 1] is None  # filled: no longer working
    assert queue[168 - join_row] == 0  # after message 169 deleted the order ahead


@pytest.mark.parametrize("join_row", [60, 120, 246, 400, 700])
def test_fifo_matches_the_message_file_wherever_we_join(aapl: RealMarket, join_row: int) -> None:
    """The venue and the reference agree on the queue after every message and on every fill,
    joining the best bid at several moments of the session."""
    own, last = _messages(aapl)
    books = _lobster("orderbook")
    price = books[join_row][2]
    ts = int(aapl.records[own[join_row]]["ts_event"])
    submitted = order(1, +1, "limit", 60, price, ts=ts, latency=0)
    reports, queue = _queue_trace(
        aapl, last[join_row:], submitted, ExecutionConfig(queue_model="fifo")
    )
    row_of = {int(r): i for i, r in enumerate(own)}
    expected_queue, expected_fills = fifo_reference(join_row, price, 60)
    done = len(expected_queue) - 1
    assert queue[:done] == expected_queue[:done]
    fills = [(row_of[f.cause - aapl.base], f.size) for f in reports if isinstance(f, OrderFilled)]
    assert fills == expected_fills


def trades_reference(
    market: RealMarket, join: int, size: int
) -> tuple[int, list[tuple[int, int, str]]]:
    """A buy limit joining the best bid after record ``join`` under the documented trades model,
    written out plainly over the journal records and tops: (price, fills as (index, size, why))."""
    at = {int(o) - market.base: k for k, o in enumerate(market.tops["offset"])}
    top = market.tops[max(k for i, k in at.items() if i <= join)]
    price, ahead = int(top["bid_price"][0]), int(top["bid_size"][0])
    left, fills, crossed = size, [], False
    for i in range(join + 1, len(market.records)):
        rec = market.records[i]
        p, q, aggressor = int(rec["price"]), int(rec["size"]), int(rec["side"])
        if rec["type_id"] == 1 and aggressor != 1 and p < price:
            fills.append((i, min(left, q), "through"))
        elif rec["type_id"] == 1 and aggressor != 1 and p == price:
            excess, ahead = q - ahead, max(0, ahead - q)
            if excess > 0:
                fills.append((i, min(left, excess), "queue"))
        left = size - sum(f[1] for f in fills)
        if i in at:
            t = market.tops[at[i]]
            bids = [
                (int(b), int(s)) for b, s in zip(t["bid_price"], t["bid_size"], strict=True) if b
            ]
            if bids and price >= bids[-1][0]:
                ahead = min(ahead, dict(bids).get(price, 0))
            crossing = sum(
                int(s)
                for a, s in zip(t["ask_price"], t["ask_size"], strict=True)
                if a and a <= price
            )
            if crossing and not crossed and left:
                fills.append((i, min(left, crossing), "cross"))
                left -= fills[-1][1]
            crossed = crossing > 0
        if left == 0:
            break
    return price, fills


def test_trades_queue_model_on_binance(samples_master: Path, tmp_path: Path) -> None:
    """Joining the BTCUSDT spot bid at 61,829.76 with 0.1 BTC behind the 4.027 BTC displayed:
    no one sells at our price for a while, but the level shrinks until nothing is ahead (the
    queue can only shrink with it); the next seller at our price fills 0.00082 BTC, sellers
    below our price fill more, and the ask coming down to our price fills the rest."""
    market = real_market(samples_master, "demo-btcusdt-spot", tmp_path)
    join = 7559
    price, expected = trades_reference(market, join, 10_000_000)
    assert price == 6_182_976
    assert expected[0] == (9178, 82_000, "queue")
    assert expected[-1][2] == "cross"
    ts = int(market.records[join]["ts_event"])
    submitted = order(1, +1, "limit", 10_000_000, price, ts=ts, latency=0)
    reports, _ = _queue_trace(market, np.array([join]), submitted, ExecutionConfig())
    fills = [(f.cause - market.base, f.size) for f in reports if isinstance(f, OrderFilled)]
    assert fills == [(i, s) for i, s, _ in expected]
    assert sum(s for _, s in fills) == 10_000_000
    ack = reports[0]
    assert isinstance(ack, OrderAcknowledged)
    assert ack.queue_ahead == int(
        market.tops[market.tops["offset"] <= market.base + join][-1]["bid_size"][0]
    )


# -- the stage in a pipeline ---------------------------------------------------------------------


def _clock(data: Path, session: str) -> np.ndarray[Any, Any]:
    """The event-time clock after each journal offset: the running max of market times and
    clock ticks (other control events do not move it)."""
    from engine.events import decode
    from engine.events.control import ClockTicked
    from engine.events.market import MARKET_RECORD
    from engine.log import FixedBatch

    reader = EmbeddedLog(data).reader(journal_topic(session))
    times, offset = [], reader.start_offset
    while (batch := reader.read(offset, 1 << 20)) is not None:
        if isinstance(batch, FixedBatch):
            times += batch.view(MARKET_RECORD)["ts_event"].tolist()
        else:
            events = [decode(v) for v in batch.values()]
            times += [e.ts_event if isinstance(e, ClockTicked) else 0 for e in events]
        offset = batch.next_offset
    return np.maximum.accumulate(np.array(times, np.int64))


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("session", SESSIONS)
def test_every_decision_is_accounted_for(runs: dict, session: str, config: str) -> None:
    """Each decision of direction +-1 led to exactly one rejection, entry or exit at its
    cause; a resize only ever accompanies an entry; flat decisions led to nothing."""
    out: Outputs = runs[session, config]
    decided = out.decisions[out.decisions["direction"] != 0]["cause"].tolist()
    assert len(decided) > 5
    outcomes: dict[int, list[str]] = {}
    for e in out.risk:
        if isinstance(e, DecisionRejected):
            outcomes.setdefault(e.decision_cause, []).append(e.reason)
    for o in out.orders:
        if isinstance(o, OrderSubmitted) and o.purpose in ("entry", "exit"):
            outcomes.setdefault(o.cause, []).append(o.purpose)
    assert sorted(outcomes) == decided
    assert all(len(v) == 1 for v in outcomes.values()), outcomes
    entries = {c for c, v in outcomes.items() if v == ["entry"]}
    assert {e.cause for e in out.risk if isinstance(e, DecisionResized)} <= entries
    assert entries, "the samples must produce entries"
    reasons = {r for v in outcomes.values() for r in v} - {"entry", "exit"}
    assert reasons <= {
        "low_confidence",
        "order_pending",
        "already_in_position",
        "max_trades_per_day",
        "below_one_lot",
        "no_market",
    }


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("session", SESSIONS)
def test_orders_reach_the_venue_after_the_latency(
    samples_master: Path, runs: dict, session: str, config: str
) -> None:
    """Order ids count from 1; the venue's first word on each order (or cancel) comes at the
    first journal event whose clock reaches ``arrives_at`` (1 ms after sending)."""
    out: Outputs = runs[session, config]
    clock = _clock(samples_master, session)
    submitted = [o for o in out.orders if isinstance(o, OrderSubmitted)]
    assert [o.order_id for o in submitted] == list(range(1, len(submitted) + 1))
    first: dict[int, int] = {}
    for e in out.executions:
        if not isinstance(e, OrderRejected) or e.reason != "too_late_to_cancel":
            first.setdefault(e.order_id, e.cause)
    for o in submitted:
        assert o.arrives_at == o.ts_event + 1_000_000
        expected = o.cause + 1 + int(np.searchsorted(clock[o.cause + 1 :], o.arrives_at))
        assert first.get(o.order_id, len(clock)) == expected, o
    limits = [o for o in submitted if o.kind == "limit" and o.purpose == "entry"]
    assert bool(limits) == (config == "limit")


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("session", SESSIONS)
def test_fills_come_from_the_book_and_reconcile_with_the_portfolio(
    samples_master: Path, runs: dict, session: str, config: str
) -> None:
    """Taker fills are levels of the book in effect (no more than their size); maker fills are
    at the order's price; after each fill the portfolio's position, fees and realised PnL equal
    the fills' own arithmetic, and equity = start + realised + unrealised - fees."""
    out: Outputs = runs[session, config]
    orders = {o.order_id: o for o in out.orders if isinstance(o, OrderSubmitted)}
    fills = [e for e in out.executions if isinstance(e, OrderFilled)]
    assert fills
    tops = out.tops
    for f in fills:
        if f.liquidity == "taker":
            top = tops[np.searchsorted(tops["offset"], f.cause, side="right") - 1]
            side = "ask" if f.side > 0 else "bid"
            prices, sizes = top[f"{side}_price"].tolist(), top[f"{side}_size"].tolist()
            levels = dict(zip(prices, sizes, strict=True))
            assert f.price in levels, f
            assert f.size <= levels[f.price], f
        else:
            assert f.price == orders[f.order_id].price
    states = out.portfolio[out.portfolio["reason"] == 2]
    assert len(states) == len(fills)
    spec = session_opened(EmbeddedLog(samples_master), session).instrument
    factor = 10.0 ** -(spec.price_scale + spec.size_scale) * contract_multiplier(spec)
    position, avg, realised, fees = 0, 0.0, 0.0, 0.0
    start = float(TRADING["starting_equity"])
    for f, s in zip(fills, states, strict=True):
        assert (int(s["cause"]), int(s["ts_event"])) == (f.cause, f.ts_event)
        fees += f.fee
        if position == 0 or (position > 0) == (f.side > 0):
            avg = (avg * abs(position) + f.price * f.size) / (abs(position) + f.size)
        else:
            closed = min(f.size, abs(position)) * (1 if position > 0 else -1)
            realised += (f.price - avg) * closed * factor
        position += f.side * f.size
        assert int(s["position"]) == position
        assert float(s["fees"]) == pytest.approx(fees, rel=1e-9, abs=1e-9)
        assert float(s["realised"]) == pytest.approx(realised, rel=1e-9, abs=1e-9)
        equity = start + float(s["realised"]) + float(s["unrealised"]) - float(s["fees"])
        assert float(s["equity"]) == equity
    assert position == int(out.portfolio[-1]["position"])


def _finishes(report: Any) -> bool:
    if isinstance(report, OrderFilled):
        return report.remaining == 0
    if isinstance(report, OrderRejected):
        return report.reason != "too_late_to_cancel"
    return isinstance(report, OrderCancelled)


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("session", SESSIONS)
def test_protective_orders_follow_each_entry_and_cancel_each_other(
    samples_master: Path, runs: dict, session: str, config: str
) -> None:
    """Once an entry is done with a position, a stop 0.02 % and a target 0.03 % away from the
    average price (rounded to the tick away from it) are sent for the whole position; when the
    position is flat again every reduce-only order working at the venue is cancelled."""
    out: Outputs = runs[session, config]
    tick = session_opened(EmbeddedLog(samples_master), session).instrument.tick_size
    submitted = {o.order_id: o for o in out.orders if isinstance(o, OrderSubmitted)}
    fills = [e for e in out.executions if isinstance(e, OrderFilled)]
    states = dict(zip(map(id, fills), out.portfolio[out.portfolio["reason"] == 2], strict=True))
    protected = 0
    for entry in (o for o in submitted.values() if o.purpose == "entry"):
        reports = [e for e in out.executions if e.order_id == entry.order_id]
        done = next((e for e in reports if _finishes(e)), None)
        own = [e for e in reports if isinstance(e, OrderFilled)]
        held = int(states[id(own[-1])]["position"]) if own else 0
        children = sorted(
            (o for o in submitted.values() if o.parent_id == entry.order_id),
            key=lambda o: o.order_id,
        )
        if done is None or held == 0:
            assert children == []
            continue
        stop, target = children
        avg = float(states[id(own[-1])]["avg_price"])
        assert stop.cause == target.cause == done.cause
        assert (stop.side, target.side) == (-entry.side, -entry.side)
        assert stop.size == target.size == abs(held)
        if entry.side > 0:
            expected = (avg * 0.9998 // tick * tick, -(-avg * 1.0003 // tick) * tick)
        else:
            expected = (-(-avg * 1.0002 // tick) * tick, avg * 0.9997 // tick * tick)
        assert (stop.price, target.price) == pytest.approx(expected)
        assert (stop.kind, stop.purpose) == ("stop", "stop_loss")
        assert (target.kind, target.purpose) == ("limit", "take_profit")
        protected += 1
    assert protected > 0 or config == "limit"
    position, working, flat_events = 0, set(), 0
    for e in out.executions:
        if isinstance(e, OrderAcknowledged) and submitted[e.order_id].reduce_only:
            working.add(e.order_id)
        if _finishes(e):
            working.discard(e.order_id)
        if isinstance(e, OrderFilled):
            position += e.side * e.size
            if position == 0:
                dropped = {
                    c.order_id
                    for c in out.executions
                    if isinstance(c, OrderCancelled)
                    and c.cause == e.cause
                    and c.reason == "position_closed"
                }
                assert working <= dropped, (e, working, dropped)
                flat_events += 1
    assert flat_events > 0 or config == "limit"


@pytest.mark.parametrize("session", SESSIONS)
def test_the_report_agrees_with_the_outputs(runs: dict, session: str) -> None:
    out: Outputs = runs[session, "market"]
    report = build_report(out.portfolio, out.executions, out.risk)
    last = out.portfolio[-1]
    assert report.final_equity == float(last["equity"])
    assert report.starting_equity == pytest.approx(TRADING["starting_equity"], rel=1e-12)
    assert report.net_pnl == pytest.approx(report.final_equity - report.starting_equity)
    assert report.fees == pytest.approx(
        sum(f.fee for f in out.executions if isinstance(f, OrderFilled))
    )
    flat_again = 0
    position = 0
    for f in (e for e in out.executions if isinstance(e, OrderFilled)):
        before, position = position, position + f.side * f.size
        flat_again += int(before != 0 and position == 0)
    assert report.round_trips == flat_again
    rejected: dict[str, int] = {}
    for e in out.risk:
        if isinstance(e, DecisionRejected):
            rejected[e.reason] = rejected.get(e.reason, 0) + 1
    assert report.rejections == rejected
    assert report.sharpe_returns > 10
    assert 0.0 < report.exposure < 1.0
    days = [e for e in out.risk if isinstance(e, TradingDayStarted)]
    assert len(days) == 1


# -- determinism ---------------------------------------------------------------------------------


STAGES = CONFIGS["limit"]


def _chains(data: Path, session: str, scratch: Path, cuts: list[int], batch: int) -> Chains:
    config = RunConfig(pipeline="test-trading", stages=STAGES)
    return sliced_chains(data, session, scratch, config, cuts, batch, pipelines=PIPELINES)


@pytest.fixture(scope="module")
def chains(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        session: _chains(samples_master, session, tmp_path_factory.mktemp("c"), [], 65536)
        for session in SESSIONS
    }


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cuts=st.lists(st.integers(0, 18500), max_size=6),
    batch=st.sampled_from([13, 61, 500, 65536]),
)
def test_trading_does_not_depend_on_slicing(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: dict,
    session: str,
    cuts: list[int],
    batch: int,
) -> None:
    got = _chains(samples_master, session, tmp_path_factory.mktemp("sliced"), cuts, batch)
    assert got == chains[session]


@pytest.mark.parametrize("session", SESSIONS)
def test_one_event_at_a_time_gives_identical_bytes(
    samples_master: Path, tmp_path: Path, chains: dict, session: str
) -> None:
    """Live slices of one event (the first 6,000 events, where the first orders work; the
    rest in one slice) against one 64 Ki slice."""
    log = EmbeddedLog(samples_master)
    config = RunConfig(pipeline="test-trading", stages=STAGES)
    runner = Runner(
        log,
        journal_topic(session),
        EmbeddedLog(tmp_path),
        "t",
        topology(log, session, config, pipelines=PIPELINES),
    )
    runner.begin()
    runner.advance(stop=min(6000, runner.reader.end_offset), batch=1)
    runner.advance(batch=65536)
    runner.close()
    assert [(s.port, s.count, s.chain) for s in runner.summaries()] == chains[session]


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    every=st.sampled_from([499, 2048, 4096]),
    kill_at=st.integers(1, 13000),
)
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: dict,
    session: str,
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    config = RunConfig(pipeline="test-trading", snapshot_every=every, stages=STAGES)
    got = resumed_chains(samples_master, session, scratch, config, kill_at, pipelines=PIPELINES)
    assert got == chains[session]


def test_snapshot_restore_round_trips_every_bit(samples_master: Path, tmp_path: Path) -> None:
    """Mid-session with orders working: snapshot, restore into a fresh stage, snapshot again:
    the same bytes; inspect() shows the account; another config refuses the state."""
    log = EmbeddedLog(samples_master)
    config = RunConfig(pipeline="test-trading", stages=STAGES)
    top = topology(log, "demo-btcusdt-usdm", config, pipelines=PIPELINES)
    runner = Runner(log, journal_topic("demo-btcusdt-usdm"), EmbeddedLog(tmp_path), "t", top)
    runner.begin()
    stage = top.stages[-1][1]
    while runner.offset < runner.reader.end_offset and not stage.inspect()["orders"]:
        runner.advance(stop=runner.offset + 50, batch=50)
    runner.close()
    assert stage.inspect()["orders"], "some order must be working mid-session"
    state = stage.snapshot()
    fresh = topology(log, "demo-btcusdt-usdm", config, pipelines=PIPELINES).stages[-1][1]
    fresh.restore(state)
    assert fresh.snapshot() == state
    view = fresh.inspect()
    assert view["clock"] > 0
    assert view["trading_day"] == "2024-08-08"
    other = RunConfig(pipeline="test-trading", stages={**STAGES, "trading": {"latency_ms": 2.0}})
    with pytest.raises(ValueError, match="config"):
        topology(log, "demo-btcusdt-usdm", other, pipelines=PIPELINES).stages[-1][1].restore(state)


def test_the_docs_snippet_runs(samples_master: Path, tmp_path: Path, capsys: Any) -> None:
    """Every ```python block of docs/trading.md runs against a real run's topics."""
    import re

    run_trading(samples_master, "demo-btcusdt-spot", tmp_path, CONFIGS["market"])
    text = (Path(__file__).parents[2] / "docs" / "trading.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        names = {"data": tmp_path, "run_id": "t", "samples": samples_master}
        exec(compile(block, "docs/trading.md", "exec"), names)
    shown = capsys.readouterr().out
    assert "round trips" in shown
    assert "not annualised" in shown
    assert "beats no trade / buy and hold / random:" in shown
