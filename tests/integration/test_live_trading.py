"""A live paper session (in process, real loopback sockets): operator commands honoured live
and identically in replay, paper fills by the simulated venue's rules, market hours."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from engine.app.exchange_sim import BackgroundSim
from engine.app.feeds.binance import FeedConfig
from engine.app.ingest import binance
from engine.app.live.hours import CalendarHours, ScaledClock
from engine.app.live.session import LiveConfig, LiveResult, LiveSession
from engine.events import decode
from engine.events.control import FlattenPosition, HaltTrading, ResumeTrading, SessionClosed
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


def test_a_calendar_session_opens_at_the_open_and_closes_itself_at_the_close(
    tmp_path: Path,
) -> None:
    """XNYS on 2024-08-08 with an injected clock running 7,200 times faster than the wall
    (a second is two hours): the session waits for 09:30 New York, starts, and closes
    itself at 16:00 (within ten clock minutes: 83 ms of machine time)."""
    start = pd.Timestamp("2024-08-08 09:15", tz="America/New_York").value
    opens = pd.Timestamp("2024-08-08 09:30", tz="America/New_York").value
    closes = pd.Timestamp("2024-08-08 16:00", tz="America/New_York").value
    log = EmbeddedLog(tmp_path, FsyncPolicy(FsyncMode.NEVER))
    with BackgroundSim(USDM) as urls:
        config = _config(urls, "nyse", hours=CalendarHours("XNYS"), tick_ms=0)
        config.feed = FeedConfig("BTCUSDT", "usdm", urls.ws, urls.rest)  # no end: only the close
        clock = ScaledClock(start, 7200.0)
        result = asyncio.run(LiveSession(log, config, clock).run())
    assert result.reason == "market close"
    assert result.manifest.status == "complete"
    _, events = journal(tmp_path, "nyse")
    opened, closed = events[0], events[-1]
    assert opened.ts_recv >= opens  # nothing before the open
    minutes = 60 * 10**9
    assert opens <= opened.ts_recv < opens + 10 * minutes
    assert isinstance(closed, SessionClosed)
    assert closed.reason == "market close"
    assert closes <= closed.ts_recv < closes + 10 * minutes
