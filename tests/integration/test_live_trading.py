"""A live paper session (in process, real loopback sockets): operator commands honoured live
and identically in replay, paper fills by the simulated venue's rules, market hours."""

from __future__ import annotations

import asyncio
import time
from datetime import time as day_time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from engine.app.exchange_sim import BackgroundSim
from engine.app.feeds.binance import FeedConfig
from engine.app.ingest import binance
from engine.app.live.days import DailySessions
from engine.app.live.hours import AlwaysOpen, CalendarHours, ScaledClock
from engine.app.live.session import LiveConfig, LiveResult, LiveSession
from engine.events import decode
from engine.events.control import (
    FeedSubscribed,
    FlattenPosition,
    HaltTrading,
    ResumeTrading,
    SessionClosed,
)
from engine.events.trading import DecisionRejected, OrderFilled, OrderSubmitted
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import append_control, journal_topic
from engine.runtime import RunConfig, verify
from tests.live_support import USDM, journal
from tests.trading_support import PIPELINES, read_outputs, run_trading

SPEC = binance.instrument("usdm", "BTCUSDT")


def _config(urls: Any, session: str, **changes: Any) -> LiveConfig:
    feed = FeedConfig("BTCUSDT", "usdm", urls.ws, urls.rest, end_with_feed=True)
    # a decision every 8th book change; a position stays open until its stop or target (an
    # opposite decision does not close it), so the commands below meet one
    stages = {"decisions": {"every": 8}, "trading": {"on_opposite": "ignore"}}
    run = RunConfig(pipeline="test-trading", snapshot_every=100_000, stages=stages)
    settings: dict[str, Any] = {"run_id": session, "tick_ms": 100, **changes}
    return LiveConfig(session, feed, SPEC, PIPELINES, run, **settings)


async def _operate(data: Path, session: LiveSession, name: str) -> tuple[LiveResult, list[int]]:
    """Run the session; once it holds a position: halt, flatten, then resume, each from
    another thread as ``tape halt`` would (through the session's inbox)."""
    task = asyncio.create_task(session.run())
    while (status := session.status()) is None or status.position == 0:
        assert not task.done(), "the session ended before it ever held a position"
        await asyncio.sleep(0.005)
    log = EmbeddedLog(data)
    for command in (HaltTrading, FlattenPosition, ResumeTrading):
        now = time.time_ns()
        fields = ("test", "pytest") if command is not ResumeTrading else ("pytest",)
        queued = await asyncio.to_thread(append_control, log, name, [command(now, now, *fields)])
        assert queued is None  # the live session holds the journal: the inbox takes it
        events = session.status().events  # type: ignore[union-attr]
        while session.status().events < events + 400:  # type: ignore[union-attr]
            await asyncio.sleep(0.005)
    result = await task
    commands = HaltTrading | FlattenPosition | ResumeTrading
    offsets = {type(e): i for i, e in _offsets(data, name) if isinstance(e, commands)}
    return result, [offsets[HaltTrading], offsets[FlattenPosition], offsets[ResumeTrading]]


def _offsets(data: Path, name: str) -> list[tuple[int, Any]]:
    """(journal offset, event) of every low-rate event of the session's journal."""
    reader = EmbeddedLog(data).reader(journal_topic(name))
    return [
        (batch.base_offset + k, decode(value))
        for batch in reader.batches()
        if not isinstance(batch, FixedBatch)
        for k, value in enumerate(batch.values())
    ]


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LiveResult, list[int]]:
    data = tmp_path_factory.mktemp("live")
    log = EmbeddedLog(data, FsyncPolicy(FsyncMode.NEVER))
    with BackgroundSim(USDM, speed=4.0) as urls:
        session = LiveSession(log, _config(urls, "ops"))
        result, offsets = asyncio.run(_operate(data, session, "ops"))
    return data, result, offsets


def test_halt_flatten_resume_are_honoured_live_and_identically_in_replay(
    operated: tuple[Path, LiveResult, list[int]],
) -> None:
    data, result, (halt, flatten, resume) = operated
    assert result.reason == "end of feed"
    assert result.manifest.status == "complete"
    _, events = journal(data, "ops")
    journaled = {
        type(e): e for e in events if isinstance(e, HaltTrading | FlattenPosition | ResumeTrading)
    }
    assert set(journaled) == {HaltTrading, FlattenPosition, ResumeTrading}
    out = read_outputs(data, "ops")
    # halted: every decision caused between halt and resume is refused as "halted"
    refused = [r for r in out.risk if isinstance(r, DecisionRejected) and halt < r.cause < resume]
    decided = [d for d in out.decisions if halt < d["cause"] < resume and d["direction"] != 0]
    assert decided
    assert len(refused) == len(decided)
    assert {r.reason for r in refused} == {"halted"}
    entries = [o for o in out.orders if isinstance(o, OrderSubmitted) and o.purpose == "entry"]
    assert not [o for o in entries if halt < o.cause < resume]
    assert [o for o in entries if o.cause > resume]  # trading again after the resume
    # flatten: the position held at the command is closed by a reduce-only market exit
    held = out.portfolio[out.portfolio["cause"] < flatten]["position"][-1]
    assert held != 0
    (exit_order,) = [o for o in out.orders if isinstance(o, OrderSubmitted) and o.cause == flatten]
    assert exit_order.purpose == "exit"
    assert exit_order.kind == "market"
    assert exit_order.reduce_only
    assert exit_order.size == abs(held)
    assert exit_order.side == (-1 if held > 0 else 1)
    after = out.portfolio[out.portfolio["cause"] > flatten]
    assert after["position"][0] == 0  # the broker's fill of the exit reached the account
    # and a replay of the journal gives the same bytes, commands and broker reports included
    replayed = verify(EmbeddedLog(data), "ops", pipelines=PIPELINES)
    assert replayed.identical, replayed.differing_ports


def test_paper_fills_are_the_simulated_venues(
    operated: tuple[Path, LiveResult, list[int]], tmp_path: Path
) -> None:
    """The paper broker fills the first entry exactly as the backtest's simulated venue does
    on the same journal, with the same latency (price, size, fee, liquidity, slippage)."""
    data, _, _ = operated
    live = read_outputs(data, "ops")
    stages = {  # as the live run
        "decisions": {"every": 8},
        "trading": {"latency_ms": 1.0, "on_opposite": "ignore"},
    }
    backtest = run_trading(data, "ops", tmp_path, stages)
    entry = next(o for o in live.orders if isinstance(o, OrderSubmitted))
    assert entry == next(o for o in backtest.orders if isinstance(o, OrderSubmitted))

    def fills(out: Any) -> list[tuple[Any, ...]]:
        return [
            (f.price, f.size, f.remaining, f.fee, f.liquidity, f.slippage, f.ts_event)
            for f in out.executions
            if isinstance(f, OrderFilled) and f.order_id == entry.order_id
        ]

    assert fills(live)
    assert fills(live) == fills(backtest)
    for price, size, _, fee, liquidity, _, _ in fills(live):  # Binance USD-M taker: 5 bp
        assert liquidity == "taker"
        assert fee == pytest.approx(price * size * 1e-5 * 5 / 10_000)


MINUTE = 60 * 10**9


def _ny(at: str) -> int:
    return int(pd.Timestamp(f"2024-08-08 {at}", tz="America/New_York").value)


def _nyse(data: Path, urls: Any, clock: ScaledClock, stop_when_open: bool) -> LiveResult:
    """An XNYS session on 2024-08-08 under ``clock``; stopped once it has opened, or left to
    close itself."""
    log = EmbeddedLog(data, FsyncPolicy(FsyncMode.NEVER))
    config = _config(urls, "nyse", hours=CalendarHours("XNYS"), tick_ms=0)
    config.feed = FeedConfig("BTCUSDT", "usdm", urls.ws, urls.rest)  # no end: only the close
    session = LiveSession(log, config, clock)

    async def run() -> LiveResult:
        task = asyncio.create_task(session.run())
        while stop_when_open and session.status() is None:
            assert not task.done(), "the session ended before it opened"
            await asyncio.sleep(0.005)
        session.stop("test done")
        return await task

    return asyncio.run(run() if stop_when_open else session.run())


def test_a_calendar_session_waits_for_the_open(tmp_path: Path) -> None:
    """XNYS on 2024-08-08 from 09:25 New York, the clock 720 times faster than the wall (five
    minutes in 0.42 s): nothing is journaled before 09:30, the session opens then."""
    with BackgroundSim(USDM) as urls:
        result = _nyse(tmp_path, urls, ScaledClock(_ny("09:25"), 720.0), stop_when_open=True)
    assert result.reason == "test done"
    _, events = journal(tmp_path, "nyse")
    opened = events[0]
    # the open is stamped when the session opens; 10 clock minutes is 0.83 s of machine
    # time for the start-up to reach its first append
    assert _ny("09:30") <= opened.ts_recv < _ny("09:30") + 10 * MINUTE


def test_a_calendar_session_closes_itself_at_the_close(tmp_path: Path) -> None:
    """From 15:58 New York at 120 times the wall (the close one second away): the session
    closes itself at 16:00 (``market close``, the run complete), not before."""
    with BackgroundSim(USDM) as urls:
        result = _nyse(tmp_path, urls, ScaledClock(_ny("15:58"), 120.0), stop_when_open=False)
    assert result.reason == "market close"
    assert result.manifest is not None
    assert result.manifest.status == "complete"
    _, events = journal(tmp_path, "nyse")
    closed = events[-1]
    assert isinstance(closed, SessionClosed)
    assert closed.reason == "market close"
    assert _ny("16:00") <= closed.ts_recv < _ny("16:00") + 10 * MINUTE


def test_a_daily_roll_closes_the_days_session_and_opens_the_next_days(tmp_path: Path) -> None:
    """A 24/7 venue with ``--roll 00:00`` from 23:59 UTC, the clock 60 times faster than the
    wall: BTC-2026-12-02 closes itself at midnight (``daily roll``, complete), BTC-2026-12-03
    opens in the same process with a fresh snapshot and trades until stopped; each day's run
    replays bit-for-bit on its own."""
    start = int(pd.Timestamp("2026-12-02 23:59", tz="UTC").value)
    midnight = start + MINUTE
    log = EmbeddedLog(tmp_path, FsyncPolicy(FsyncMode.NEVER))
    with BackgroundSim(USDM, speed=4.0) as urls:
        config = _config(urls, "BTC", hours=AlwaysOpen(day_time(0, 0)), run_id="R")
        config.feed = FeedConfig("BTCUSDT", "usdm", urls.ws, urls.rest)
        days = DailySessions(log, config, ScaledClock(start, 60.0))

        async def two_days() -> list[LiveResult]:
            task = asyncio.create_task(days.run())
            while (
                days.current is None
                or days.current.config.session != "BTC-2026-12-03"
                or ((status := days.current.status()) is None or status.events < 200)
            ):
                assert not task.done(), "the next day's session never traded"
                await asyncio.sleep(0.01)
            days.stop("test done")
            return await task

        first, second = asyncio.run(two_days())
    assert first.reason == "daily roll"
    assert first.manifest is not None
    assert first.manifest.status == "complete"
    assert first.manifest.run_id == "R-2026-12-02"
    assert second.reason == "test done"
    assert second.manifest is not None
    assert second.manifest.run_id == "R-2026-12-03"
    _, closing = journal(tmp_path, "BTC-2026-12-02")
    assert isinstance(closing[-1], SessionClosed)
    assert closing[-1].reason == "daily roll"
    assert start <= closing[0].ts_recv
    assert midnight <= closing[-1].ts_recv
    market, opening = journal(tmp_path, "BTC-2026-12-03")
    assert opening[0].ts_recv >= midnight  # the new day opens after the roll, never before
    # its own connection and book from the venue, then market data
    assert [e.connection for e in opening if isinstance(e, FeedSubscribed)] == [1]
    assert len(market) > 0
    for manifest in (first.manifest, second.manifest):
        assert verify(EmbeddedLog(tmp_path), manifest.run_id, pipelines=PIPELINES).identical
