"""The simulated exchange's tape: replays a recording's stream to its clients, with faults.

One tape per server, like one venue: every client connected gets the same messages from the
moment it connects. Pacing: at the recorded pace times ``speed``, or (``speed`` None) as fast
as the clients read, which pauses the tape while nobody is connected.

**Snapshots.** A REST depth snapshot line of the recording is where the recorder's snapshot
arrived among the stream messages. To place it at the same point of a client's stream, the
tape stops there until a client has asked for a snapshot (answered with the recorded bytes)
and has then sent a request over its WebSocket (Binance's ``LIST_SUBSCRIPTIONS``); the answer
to that request is the client's fence: everything before it was streamed before the
snapshot. A client that never asks is waited for ``snapshot_wait`` seconds. Until the first
recorded snapshot is reached, REST requests wait for it; afterwards they are answered at once
from the exchange's own book (:class:`~engine.app.exchange_sim.book.SimBook`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from engine.app.exchange_sim.book import SimBook
from engine.app.exchange_sim.faults import Fault
from engine.app.exchange_sim.recording import Message, Recording
from engine.app.feeds.binance.config import END_OF_RECORDING

END_REASON = END_OF_RECORDING
"""Close reason of every connection when the tape has sent the whole recording."""
YIELD_EVERY = 64
"""Messages sent between yields to the event loop at full speed (requests must get in)."""
LINGER = 1.0
"""Seconds the tape stays open after the last message once every client has read it, for
snapshots and requests still on their way (each one starts the wait again)."""


@dataclass(eq=False)
class Client:
    """One WebSocket connection: the streams it wants and how to send to it."""

    wanted: set[tuple[str, str]]
    """(lower-case symbol, kind) pairs, e.g. ("btcusdt", "depth")."""
    send: Callable[[bytes], Awaitable[None]]
    close: Callable[[int, str], Awaitable[None]]
    ping: Callable[[], Awaitable[None]]
    """Send a ping frame; :attr:`ponged` is set when its pong comes back."""
    ponged: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0

    def wants(self, msg: Message) -> bool:
        """Whether ``msg`` belongs to a stream this client subscribed to (unreadable: yes)."""
        return msg.kind is None or (msg.symbol, msg.kind) in self.wanted


@dataclass
class Status:
    """What the tape has done, for ``GET /control``."""

    position: int = 0
    """Stream messages passed (sent or dropped)."""
    total: int = 0
    sent: int = 0
    """Frames sent, over all connections."""
    dropped: int = 0
    snapshots_served: int = 0
    connections: int = 0
    done: bool = False
    faults: list[str] = field(default_factory=list)


class Exchange:
    """See the module docstring."""

    def __init__(
        self,
        recording: Recording,
        speed: float | None = None,
        faults: list[Fault] | None = None,
        snapshot_wait: float = 5.0,
    ) -> None:
        self.recording = recording
        self.speed = speed
        self.snapshot_wait = snapshot_wait
        self.book = SimBook(recording.market == "usdm")
        self.clients: list[Client] = []
        self.status = Status(total=recording.stream_count)
        self._scheduled = sorted((f for f in faults or [] if f.at is not None), key=_at)
        self._posted: list[Fault] = [f for f in faults or [] if f.at is None]
        self._dropping = 0
        self._index = 0  # position in recording.messages
        self._applied = 0  # messages whose effect on the book is done (a replay re-sends)
        self._joined = asyncio.Event()
        self._requests: list[tuple[int, asyncio.Future[bytes]]] = []
        self._request_arrived = asyncio.Event()
        self._fence = asyncio.Event()
        self._activity = asyncio.Event()
        self._first_snapshot = next(
            (i for i, msg in enumerate(recording.messages) if msg.kind == "snapshot"), None
        )
        self._started = asyncio.get_running_loop().time()
        self._repace = False

    # -- clients ---------------------------------------------------------------------------

    def join(self, client: Client) -> None:
        """A client connected."""
        self.clients.append(client)
        self.status.connections += 1
        self._joined.set()

    def leave(self, client: Client) -> None:
        """A client's connection ended."""
        if client in self.clients:
            self.clients.remove(client)
        if not self.clients:
            self._joined.clear()

    def fence(self) -> None:
        """A client sent a request over its WebSocket (and has been answered)."""
        self._fence.set()
        self._activity.set()

    def post(self, fault: Fault) -> None:
        """A fault from the control endpoint: it acts before the next message."""
        self._posted.append(fault)

    def pace(self, speed: float | None) -> None:
        """From the next message on, replay at ``speed`` times the recorded pace (None: as
        fast as the clients read): a burst, or a calm, on demand."""
        self.speed = speed
        self._repace = True

    async def snapshot(self, limit: int) -> bytes:
        """The REST depth snapshot a client asked for (see the module docstring)."""
        self._activity.set()
        if self._first_snapshot is not None and self._index <= self._first_snapshot:
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._requests.append((limit, future))
            self._request_arrived.set()
            return await future
        self.status.snapshots_served += 1
        return self.book.snapshot_body(limit)

    # -- the tape --------------------------------------------------------------------------

    async def run(self) -> None:
        """Replay the whole recording, then close every connection."""
        await self._joined.wait()
        loop = asyncio.get_running_loop()
        first_ts = next((msg.ts for msg in self.recording.messages if msg.ts), 0)
        self._started = loop.time()
        messages = self.recording.messages
        while self._index < len(messages):
            msg = messages[self._index]
            if msg.kind == "snapshot":
                if self._index >= self._applied:  # not when a replay passes it again
                    await self._snapshot_line(msg)
                self._index += 1
                continue
            await self._faults()
            if self._repace and msg.ts:  # a new pace counts from this message
                self._repace = False
                if self.speed is not None:
                    self._started = loop.time() - (msg.ts - first_ts) / 1e9 / self.speed
            if self.speed is not None and msg.ts:
                delay = self._started + (msg.ts - first_ts) / 1e9 / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif self.speed is None and not self.clients:
                await self._joined.wait()
            await self._pass(msg)
        await self._linger()
        self.status.done = True
        for client in list(self.clients):
            await client.close(1000, END_REASON)

    async def _linger(self) -> None:
        """Wait until every client has read the whole stream (a ping's pong comes back after
        everything sent before it) and then until nobody has asked anything for
        :data:`LINGER` seconds, so a client still catching up can resynchronise."""
        for client in list(self.clients):
            client.ponged.clear()
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                await client.ping()
                await asyncio.wait_for(client.ponged.wait(), self.snapshot_wait)
        while True:
            self._activity.clear()
            try:
                await asyncio.wait_for(self._activity.wait(), LINGER)
            except TimeoutError:
                return

    async def _pass(self, msg: Message) -> None:
        """Send one stream message (unless dropping) and let the exchange's book move."""
        if self._index >= self._applied:
            if msg.depth is not None:
                self.book.apply(msg.depth)
            self._applied = self._index + 1
        self._index += 1
        self.status.position += 1
        if self._dropping:
            self._dropping -= 1
            self.status.dropped += 1
            return
        await self._broadcast(msg.body, msg)
        if self.speed is None and self.status.position % YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _broadcast(self, body: bytes, msg: Message) -> None:
        for client in list(self.clients):
            if client.wants(msg):
                try:
                    await client.send(body)
                except (ConnectionError, RuntimeError):
                    self.leave(client)  # it went away mid-send; its handler tidies up
                    continue
                client.sent += 1
                self.status.sent += 1

    async def _snapshot_line(self, msg: Message) -> None:
        """A recorded REST snapshot: serve it to whoever asks, and wait for their fence."""
        assert msg.snapshot is not None
        self.book.reset(msg.snapshot)
        self._applied = self._index + 1
        if not self._requests:
            self._request_arrived.clear()
            try:
                await asyncio.wait_for(self._request_arrived.wait(), self.snapshot_wait)
            except TimeoutError:
                return  # nobody asked for it: the stream goes on
        self._fence.clear()
        for limit, future in self._requests:
            if not future.done():
                future.set_result(_limited(msg, limit, self.book))
                self.status.snapshots_served += 1
        self._requests.clear()
        # a client that does not fence gets the snapshot wherever it lands
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._fence.wait(), self.snapshot_wait)

    async def _faults(self) -> None:
        position = self.status.position
        due = [f for f in self._scheduled if f.at is not None and f.at <= position]
        self._scheduled = [f for f in self._scheduled if f not in due]
        due += self._posted
        self._posted = []
        for fault in due:
            self.status.faults.append(f"{fault} at message {position}")
            await self._inject(fault)

    async def _inject(self, fault: Fault) -> None:
        if fault.kind == "drop":
            self._dropping += int(fault.arg)
        elif fault.kind == "stall":
            await asyncio.sleep(fault.arg)
            self._started += fault.arg
        elif fault.kind == "malformed":
            msg = self._next_stream_message()
            if msg is not None:
                await self._broadcast(msg.body[: len(msg.body) // 2], msg)
        elif fault.kind == "pace":
            self.pace(fault.arg or None)
        elif fault.kind == "close":
            for client in list(self.clients):
                await client.close(1011, "simulated fault: connection closed")
                self.leave(client)
            self._rewind(int(fault.arg))

    def _rewind(self, count: int) -> None:
        """Go back ``count`` stream messages: the next connection gets them again."""
        while count > 0 and self._index > 0:
            self._index -= 1
            if self.recording.messages[self._index].kind != "snapshot":
                count -= 1
                self.status.position -= 1

    def _next_stream_message(self) -> Message | None:
        for msg in self.recording.messages[self._index :]:
            if msg.kind != "snapshot":
                return msg
        return None


def _at(fault: Fault) -> int:
    return fault.at if fault.at is not None else -1


def _limited(msg: Message, limit: int, book: SimBook) -> bytes:
    """The recorded snapshot's bytes, or the book re-served when fewer levels were asked."""
    assert msg.snapshot is not None
    if limit >= max(len(msg.snapshot.bids), len(msg.snapshot.asks)):
        return msg.body
    return book.snapshot_body(limit)
