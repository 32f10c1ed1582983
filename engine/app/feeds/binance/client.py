"""The Binance data client: Binance's local order book procedure over a live connection.

Per connection: subscribe (journal ``feed.subscribed``), journal every stream message as it
arrives, and fetch a REST depth snapshot meanwhile. The snapshot is journaled where it belongs
among the stream messages: when it arrives the client sends ``LIST_SUBSCRIPTIONS`` over the
stream and journals the snapshot when the answer comes back, so everything the venue streamed
before answering precedes it in the journal (the venue answers in stream order). Which
updates the snapshot covers is the book's business (buffer, drop at or below
``lastUpdateId``, continuity of ``U``/``u`` or ``pu``), decided by the same
:class:`~engine.app.ingest.binance.Sequencer` and ``book`` processor as for a recording.

* **Gap** (continuity broken): the converter journals ``feed.gap_detected`` and flags the
  message F_GAP (the book goes stale); the client fetches a new snapshot, and again while the
  sequencer still finds no update straddling it.
* **Disconnect**: ``feed.disconnected``, then reconnect with bounded exponential backoff,
  ``feed.subscribed``, and a new snapshot; the first depth update after it is flagged F_GAP so
  the book waits for that snapshot rather than trusting continuity across the break.
* **Repeats**: a message whose trade or update id is not newer than the newest journaled of
  its stream is skipped (:class:`~engine.app.feeds.binance.parsing.Seen`, seeded from the
  journal on restart), so nothing is journaled twice across reconnects or restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import msgspec

from engine.app.feeds.binance import websocket
from engine.app.feeds.binance.config import END_OF_RECORDING, FeedConfig
from engine.app.feeds.binance.http import SnapshotError, fetch_snapshot
from engine.app.feeds.binance.parsing import FrameParser, Seen
from engine.app.feeds.binance.resume import FeedResume
from engine.app.feeds.binance.schemas import ANSWER
from engine.app.ingest.session import Bad, Item
from engine.events.control import FeedDisconnected, FeedGapDetected, FeedSubscribed, InstrumentSpec

YIELD_EVERY = 16
"""Frames handled between yields to the event loop, so a snapshot's HTTP response is read
while the stream is busy."""
FENCE = "LIST_SUBSCRIPTIONS"
"""The request whose answer places a snapshot in the stream (any request would do)."""


class FeedSink(Protocol):
    """Where a feed's items go: the session journal, in the order given."""

    def publish(self, items: list[Item]) -> None:
        """Journal ``items`` now, in order (market record arrays, events, bad frames)."""

    def event_time(self, received: int) -> int:
        """The venue's event time at local time ``received``, for the feed's own events."""


@dataclass
class FeedStats:
    """What the feed has done, for the live status line."""

    frames: int = 0
    repeats: int = 0
    gaps: int = 0
    snapshots: int = 0
    quarantined: int = 0
    connections: int = 0
    connect_failures: int = 0
    last_error: str = ""


@dataclass
class _Fence:
    ident: int
    body: bytes
    received: int
    done: asyncio.Event


class BinanceFeed:
    """See the module docstring. ``clock`` gives local time in ns (the wall clock by default)."""

    def __init__(
        self,
        config: FeedConfig,
        spec: InstrumentSpec,
        sink: FeedSink,
        resume: FeedResume | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        resume = resume or FeedResume()
        self.config, self.sink, self.clock = config, sink, clock
        self.parser = FrameParser(
            spec, config.market == "usdm", config.stream_url, resume.last_recv
        )
        self.seen = Seen(resume)
        self.stats = FeedStats(connections=resume.connections)
        self._resync = resume.opened  # a restarted session cannot vouch for continuity
        self._fence: _Fence | None = None
        self._ident = 0
        self._snapshot_task: asyncio.Task[None] | None = None
        self._again = False
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None

    async def run(self, stop: asyncio.Event) -> str:
        """Follow the venue until ``stop`` is set: "stopped", or "end of feed" when the venue
        said so and ``end_with_feed`` is on."""
        delay = self.config.backoff_initial
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                try:
                    ws = await websocket.connect(
                        http, self.config.stream_url, self.config.snapshot_timeout
                    )
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.stats.connect_failures += 1
                    self.stats.last_error = f"connect {self.config.stream_url}: {exc}"
                else:
                    frames = self.stats.frames
                    ended = await self._connection(http, ws, stop)
                    if ended is not None:
                        return ended
                    if self.stats.frames > frames:
                        delay = self.config.backoff_initial
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.config.backoff_max)
        return "stopped"

    async def _connection(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse[bool],
        stop: asyncio.Event,
    ) -> str | None:
        """One connection, until it ends; the run's end reason, or None to reconnect."""
        self.stats.connections += 1
        connection = self.stats.connections
        now = self.clock()
        self.sink.publish(
            [
                FeedSubscribed(
                    self.sink.event_time(now), now, self.config.stream_url,
                    self.config.streams, connection,
                )
            ]
        )  # fmt: skip
        if self._resync:
            self.parser.resync()
        self._resync = True  # whatever ends this connection, the next cannot vouch for it
        self._fence, self._again = None, False
        self._http, self._ws = http, ws
        self._snapshot_task = asyncio.create_task(self._snapshot())
        closer = asyncio.create_task(_close_on(stop, ws))
        try:
            reason, detail = await self._receive(ws)
        finally:
            closer.cancel()
            self._snapshot_task.cancel()
            self._fence = self._ws = None
        if stop.is_set():
            reason, detail = "stopped", "the session is stopping"
        now = self.clock()
        self.sink.publish(
            [FeedDisconnected(self.sink.event_time(now), now, connection, reason, detail)]
        )
        if stop.is_set():
            return "stopped"
        if self.config.end_with_feed and detail.endswith(END_OF_RECORDING):
            return "end of feed"
        return None

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> tuple[str, str]:
        while True:
            try:
                msg = await ws.receive()  # answers the venue's pings too, which can fail
            except (aiohttp.ClientError, ConnectionError) as exc:
                return "error", f"{type(exc).__name__}: {exc}"
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                self._frame(data, self.clock())
                if self.stats.frames % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # frames already buffered never suspend receive()
            elif msg.type is aiohttp.WSMsgType.ERROR:
                return "error", str(ws.exception() or msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                return "closed", f"code {ws.close_code or msg.data}: {msg.extra or ''}"
            elif msg.type is aiohttp.WSMsgType.CLOSED:
                return "closed", f"code {ws.close_code}: connection closed"

    def _frame(self, body: bytes, received: int) -> None:
        """One frame: the fence's answer, a repeat, or a message to journal."""
        self.stats.frames += 1
        if not body.startswith(b'{"stream"') and self._answered(body):
            return
        if not self.seen.fresh(body):
            self.stats.repeats += 1
            return
        self._publish(self.parser.items(body, received))

    def _answered(self, body: bytes) -> bool:
        """Whether ``body`` answers the pending fence (then the snapshot is journaled)."""
        fence = self._fence
        try:
            answer = ANSWER.decode(body)
        except msgspec.DecodeError:  # not an answer: the converter judges it
            return False
        if fence is None or answer.id != fence.ident:
            return answer.id is not None  # an answer to nothing pending: not market data
        self._fence = None
        self.stats.snapshots += 1
        self._publish(self.parser.items(fence.body, fence.received))
        fence.done.set()
        return True

    def _publish(self, items: list[Item]) -> None:
        self.sink.publish(items)
        for item in items:
            if isinstance(item, FeedGapDetected):
                self.stats.gaps += 1
                self._want_snapshot()
            elif isinstance(item, Bad):
                self.stats.quarantined += 1

    def _want_snapshot(self) -> None:
        task = self._snapshot_task
        if task is not None and not task.done():
            self._again = True
        elif self._ws is not None:
            self._snapshot_task = asyncio.create_task(self._snapshot())

    async def _snapshot(self) -> None:
        """Fetch a snapshot and fence it into the stream; retry with backoff until one lands."""
        http, ws = self._http, self._ws
        assert http is not None
        assert ws is not None
        delay = self.config.backoff_initial
        while True:
            self._again = False
            try:
                body = await fetch_snapshot(
                    http, self.config.depth_url, self.config.symbol.upper(),
                    self.config.depth_limit, self.config.snapshot_timeout,
                )  # fmt: skip
            except SnapshotError as exc:
                self.stats.last_error = str(exc)
            else:
                await self._place(ws, body)
                if not self._again:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.backoff_max)

    async def _place(self, ws: aiohttp.ClientWebSocketResponse[bool], body: bytes) -> None:
        self._ident += 1
        fence = _Fence(self._ident, body, self.clock(), asyncio.Event())
        self._fence = fence
        await websocket.send_request(ws, FENCE, fence.ident)
        try:
            await asyncio.wait_for(fence.done.wait(), self.config.snapshot_timeout)
        except TimeoutError:
            if self._fence is fence:  # the venue does not answer requests: place it now
                self._fence = None
                self.stats.snapshots += 1
                self._publish(self.parser.items(body, fence.received))


async def _close_on(stop: asyncio.Event, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
    await stop.wait()
    await ws.close()
