"""Shared by the dashboard tests: a demo data directory with runs, a tampered journal, a live
feed that grows a journal while a test watches, and a real server on a loopback port."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import uvicorn
from typer.testing import CliRunner

from engine.app.cli import app
from engine.events import by_name, decode
from engine.events.control import SessionClosed
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, PartitionLockedError
from engine.log.journal import JournalWriter, journal_topic

TRADED = "web-day"
"""The default pipeline over the six-minute Binance spot sample with a bundle trained on its
first 60 % (the demo's traded run): it has orders and fills."""
TAMPERED = "web-aapl"
"""A default run of demo-aapl whose journal is tampered with after the run."""
TAMPERED_SESSION = "demo-aapl"
LIVE_SESSION = "live-aapl"
ORDER_ADDED = by_name("market.order_added").type_id


def tape(data: Path, *args: str) -> str:
    """Run a ``tape`` command on ``data``; its output (the test fails if it fails)."""
    result = CliRunner().invoke(app, ["--data", str(data), "--fsync", "never", *args])
    assert result.exit_code == 0, result.output
    return result.output


def build_demo(samples: Path, data: Path) -> Path:
    """The bundled samples, a trained bundle and two complete runs (see the constants); the
    journal of the second is then tampered with."""
    shutil.copytree(samples, data, ignore=shutil.ignore_patterns("writer.lock"))
    trained = tape(data, "train", "demo-btcusdt-spot-day", "--until", "60%", "--quiet")
    bundle = next(w for w in re.split(r"\s+", trained) if re.fullmatch(r"[0-9a-f]{64}", w))
    tape(data, "run", "demo-btcusdt-spot-day", "--run-id", TRADED, "--bundle", bundle, "--quiet")
    tape(data, "run", TAMPERED_SESSION, "--run-id", TAMPERED, "--quiet")
    tamper_journal(data, TAMPERED_SESSION, tampered_offset(data))
    return data


def tampered_offset(data: Path) -> int:
    """The journal offset :func:`build_demo` tampers with."""
    return first_order_added(EmbeddedLog(data), TAMPERED_SESSION, 300)


def first_order_added(log: EmbeddedLog, session: str, at_least: int) -> int:
    """The first ``market.order_added`` record at or after ``at_least`` in a journal."""
    reader = log.reader(journal_topic(session))
    offset = at_least
    while (batch := reader.read(offset, 4096)) is not None:
        if isinstance(batch, FixedBatch):
            hits = np.flatnonzero(batch.view(MARKET_RECORD)["type_id"] == ORDER_ADDED)
            if len(hits):
                return batch.base_offset + int(hits[0])
        offset = batch.next_offset
    raise AssertionError(f"no order_added in {session} after {at_least}")


def tamper_journal(data: Path, session: str, offset: int) -> None:
    """Rewrite ``session``'s journal with one more share in the order added at ``offset``."""
    log = EmbeddedLog(data)
    topic = journal_topic(session)
    reader = log.reader(topic)
    batches: list[Any] = []
    at = reader.start_offset
    while (batch := reader.read(at, 65536)) is not None:
        if isinstance(batch, FixedBatch):
            records = batch.records.copy()
            inside = offset - batch.base_offset
            if 0 <= inside < len(records):
                view = records.view(MARKET_RECORD)
                assert view["type_id"][inside] == ORDER_ADDED, "tamper with an order_added record"
                view["size"][inside] += 1
            batches.append(records)
        else:
            batches.append(list(zip(batch.timestamps.tolist(), batch.values(), strict=True)))
        at = batch.next_offset
    with log.writer(topic) as writer:
        writer.truncate(reader.start_offset)
        for part in batches:
            if isinstance(part, np.ndarray):
                writer.append_array(part)
            else:
                writer.append_records([(ts, None, None, v) for ts, v in part])
        writer.flush()


@contextmanager
def served(asgi: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


VENUE_DELAY_NS = (1_500_000, 2_000_000, 2_500_000, 3_000_000, 12_000_000)
"""How long before we receive it the venue stamps each event, in turn (the feed latency)."""


class LiveFeed:
    """A feed writing a recorded session into a new journal, as a live one would.

    The first ``history`` events are written at once, as the part of the session that
    happened before the test looks (event times shifted to end just before now, each
    received ``VENUE_DELAY_NS`` after its venue stamp): the features are warm when the live
    part begins. The rest are written in bursts as they "arrive", once :attr:`go` is set:
    stamped now (``ts_recv``) and a few ms earlier by the venue (``ts_event``). Between bursts
    the feed releases the journal's writer, so operator commands can be appended.
    """

    def __init__(
        self, data: Path, source: str, session: str, *, history: int = 0, burst: int = 25,
        close: bool = True,
    ) -> None:  # fmt: skip
        self.log = EmbeddedLog(data)
        self.source, self.session, self.burst, self.close = source, session, burst, close
        self.items = self._recorded()
        self.history = history
        self.stop = threading.Event()
        self.go = threading.Event()
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _recorded(self) -> list[Any]:
        reader = self.log.reader(journal_topic(self.source))
        items: list[Any] = []
        at = reader.start_offset
        while (batch := reader.read(at, 65536)) is not None:
            if isinstance(batch, FixedBatch):
                items.extend(batch.view(MARKET_RECORD).copy())
            else:
                items.extend(
                    d for d in map(decode, batch.values()) if not isinstance(d, SessionClosed)
                )
            at = batch.next_offset
        return items

    def start(self, pause: float = 0.03) -> LiveFeed:
        """Start writing; returns once the journal exists (a follower may then open it)."""
        self.pause = pause
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.log.has_topic(journal_topic(self.session)) or self.written == 0:
            assert time.monotonic() < deadline, "the feed wrote nothing"
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        start = time.time_ns()
        shift = start - _ts(self.items[min(self.history, len(self.items) - 1)]) - 20_000_000
        self._write(self.items[: self.history], lambda ts, delay: (ts + shift, ts + shift + delay))
        while not self.go.wait(0.05) and not self.stop.is_set():
            pass
        for first in range(self.history, len(self.items), self.burst):
            if self.stop.is_set():
                break
            time.sleep(self.pause)
            self._write(self.items[first : first + self.burst], _arriving_now)
        if self.close:
            self.close_session()

    def _write(self, items: list[Any], stamp: Any) -> None:
        writer = self._writer()
        for item in items:
            ts_event, ts_recv = stamp(_ts(item), VENUE_DELAY_NS[self.written % len(VENUE_DELAY_NS)])
            if isinstance(item, np.void):
                record = np.array([item], MARKET_RECORD)
                record["ts_event"], record["ts_recv"] = ts_event, ts_recv
                writer.market(record)
            else:
                rest = {"ts_event": ts_event, "ts_recv": ts_recv}
                if hasattr(item, "session"):
                    rest["session"] = self.session
                writer.event(msgspec.structs.replace(item, **rest))
            self.written += 1
        writer.close()

    def _writer(self) -> JournalWriter:
        """The journal's writer, once an operator command being appended has let go of it."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return JournalWriter(self.log, self.session)
            except PartitionLockedError:
                assert time.monotonic() < deadline, "the journal stayed locked"
                time.sleep(0.01)

    def close_session(self) -> None:
        """Append ``session.closed`` (ends ``tape run --follow``)."""
        writer = self._writer()
        now = time.time_ns()
        writer.event(SessionClosed(now, now, self.session, "end of the test feed"))
        writer.close()

    def join(self) -> None:
        self.thread.join(timeout=120)


def _arriving_now(_: int, delay: int) -> tuple[int, int]:
    """(ts_event, ts_recv) of an event received now, stamped ``delay`` earlier by the venue."""
    now = time.time_ns()
    return now - delay, now


def _ts(item: Any) -> int:
    return int(item["ts_event"]) if isinstance(item, np.void) else int(item.ts_event)
