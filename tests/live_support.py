"""Test helpers for live sessions: a recording fed through the exchange simulator into a
session journal over real loopback sockets, and the journal read back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.app.exchange_sim import BackgroundSim, Fault
from engine.app.feeds.binance import BinanceFeed, FeedConfig
from engine.app.feeds.binance.client import FeedStats
from engine.app.ingest import binance
from engine.app.live.journal import LiveJournal
from engine.events import decode
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic, quarantine_topic

SAMPLES = Path(__file__).resolve().parents[1] / "replays" / "samples"
SPOT = SAMPLES / "binance_spot_btcusdt_20240808_head3000.gz"
USDM = SAMPLES / "binance_usdm_btcusdt_20240808_head3000.gz"


def feed_recording(
    data: Path,
    recording: Path,
    session: str,
    faults: list[Fault] | None = None,
    speed: float | None = None,
) -> FeedStats:
    """Stream ``recording`` through the simulator (at ``speed`` times the recorded pace, or as
    fast as the feed reads) into ``session``'s journal until the recording ends."""
    log = EmbeddedLog(data, FsyncPolicy(FsyncMode.NEVER))
    market, symbol = binance.detect(recording)
    spec = binance.instrument(market, symbol)
    with BackgroundSim(recording, speed, faults) as urls:
        journal = LiveJournal(log, session, spec, f"binance live {urls.ws}", clock=time.time_ns)
        config = FeedConfig(symbol, market, urls.ws, urls.rest, end_with_feed=True)
        feed = BinanceFeed(config, spec, journal)
        try:
            assert asyncio.run(feed.run(asyncio.Event())) == "end of feed"
        finally:
            journal.close()
    return feed.stats


def read_topic(log: EmbeddedLog, topic: str) -> tuple[np.ndarray[Any, Any], list[msgspec.Struct]]:
    """A journal's market records and its low-rate events, each in order."""
    reader = log.reader(topic)
    records, events, offset = [], [], reader.start_offset
    while (batch := reader.read(offset)) is not None:
        offset = batch.next_offset
        if isinstance(batch, FixedBatch):
            records.append(batch.view(MARKET_RECORD).copy())
        else:
            events.extend(decode(v) for v in batch.values())
    market = np.concatenate(records) if records else np.zeros(0, MARKET_RECORD)
    return market, events


def journal(data: Path, session: str) -> tuple[np.ndarray[Any, Any], list[msgspec.Struct]]:
    """Market records and low-rate events of ``session``'s journal."""
    return read_topic(EmbeddedLog(data), journal_topic(session))


def quarantined(data: Path, session: str) -> list[msgspec.Struct]:
    """The session's quarantined records."""
    return read_topic(EmbeddedLog(data), quarantine_topic(session))[1]


REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TAPE = str(Path(sys.executable).with_name("tape"))


class Simulator:
    """``tape exchange-sim`` as a real process: ``with Simulator(path) as urls``."""

    def __init__(self, recording: Path, *args: str) -> None:
        self.args = [TAPE, "exchange-sim", str(recording), *args]
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> tuple[str, str]:
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        ws, rest = line.removeprefix("ws-url=").split(" rest-url=")
        assert ws.startswith("ws://127.0.0.1:"), line
        assert rest.startswith("http://127.0.0.1:"), line
        return ws, rest

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)


def live_process(
    data: Path, urls: tuple[str, str], session: str, run_id: str, *args: str
) -> subprocess.Popen[bytes]:
    """``tape live binance BTCUSDT`` (with the test pipelines) as a real process."""
    command = [
        PYTHON, "-m", "tests.live_cli", "--data", str(data), "live", "binance", "BTCUSDT",
        "--session", session, "--ws-url", urls[0], "--rest-url", urls[1], "--run-id", run_id,
        "--quiet", *args,
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def journal_end(data: Path, session: str) -> int:
    """How many events the session's journal holds now (0 before it exists)."""
    log = EmbeddedLog(data)
    topic = journal_topic(session)
    return log.reader(topic).end_offset if log.has_topic(topic) else 0


def wait_for_journal(data: Path, session: str, events: int, timeout: float = 60.0) -> int:
    """Wait until the journal holds at least ``events`` events; how many it holds."""
    deadline = time.monotonic() + timeout
    while (end := journal_end(data, session)) < events:
        assert time.monotonic() < deadline, f"journal {session} stuck at {end} events"
        time.sleep(0.05)
    return end
