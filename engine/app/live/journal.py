"""The live session's journal: everything from outside enters here, in one total order.

Feed messages, broker reports and clock ticks are appended through one :class:`LiveJournal`,
which also journals the commands other processes leave in the session's inbox. Each append
is written at once (the journal is the truth before anything acts on it) and then handed, as
runner slices, to whoever subscribed in this process: the in-memory hand-off that spares the
live runner from reading back what was just written. Readers in other processes follow the
files (docs/live.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import numpy as np

from engine.app.ingest.session import Bad, Item
from engine.events import decode
from engine.events.control import InstrumentSpec, SessionOpened, SessionResumed
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog
from engine.log.journal import JournalWriter, journal_topic
from engine.runtime.processor import Slice

if TYPE_CHECKING:  # confluent-kafka loads only for a session on Kafka
    from engine.log.kafka import KafkaLog

Subscriber = Callable[[list[Slice]], None]


class JournalSink(Protocol):
    """Where a live journal's appends go: :class:`~engine.log.journal.JournalWriter` (a data
    directory) or :class:`~engine.log.kafka.journal.KafkaJournalWriter` (a Kafka topic)."""

    @property
    def next_offset(self) -> int:
        """Journal offset the next queued event will get."""
        ...

    def market(self, records: np.ndarray[Any, Any]) -> None:
        """Queue market records."""

    def event(self, event: msgspec.Struct) -> None:
        """Queue one low-rate event."""

    def quarantine(self, record: Any) -> None:
        """Keep a record that could not be converted."""

    def take_inbox(self) -> int:
        """Journal the commands waiting in the session's inbox; how many."""
        ...

    def flush(self) -> None:
        """Write (and have acknowledged) everything queued."""

    def close(self) -> None:
        """Flush and let go."""


class VenueClock:
    """The venue's event time now, estimated from the last market record: its ``ts_event``
    plus the local time elapsed since it was received; the local time before any market
    record. Never goes backwards once the market has spoken. Events Tapedeck creates itself
    (ticks, commands, feed status) are stamped with it, so a journal keeps the venue's time
    base even when the venue's clock and ours differ (a replayed recording)."""

    def __init__(self) -> None:
        self.event = self.received = self.last = 0

    def saw(self, records: np.ndarray[Any, Any]) -> None:
        """Market records were journaled."""
        self.event = max(self.event, int(records["ts_event"].max()))
        self.received = max(self.received, int(records["ts_recv"].max()))

    def at(self, received: int) -> int:
        """Event time at local time ``received`` (ns)."""
        if not self.received:
            return received
        self.last = max(self.last, self.event + (received - self.received))
        return self.last


class LiveJournal:
    """Appends a live session's events and hands them on (see the module docstring)."""

    def __init__(
        self,
        log: EmbeddedLog | KafkaLog,
        session: str,
        instrument: InstrumentSpec,
        source: str,
        *,
        opened: bool = False,
        closed: bool = False,
        clock: Callable[[], int],
        writer: JournalSink | None = None,
    ) -> None:
        self.log, self.session, self.instrument, self.source = log, session, instrument, source
        if writer is None:
            assert isinstance(log, EmbeddedLog)  # a Kafka journal comes with its writer
            writer = JournalWriter(log, session)
        self.writer: JournalSink = writer
        self.venue_clock = VenueClock()
        self.clock = clock
        self.subscribers: list[Subscriber] = []
        self._opened, self._reopen = opened, closed
        self.appended = 0
        """Journal events appended by this process."""

    @property
    def next_offset(self) -> int:
        """The offset the next appended event gets."""
        return self.writer.next_offset

    def event_time(self, received: int) -> int:
        """The venue's event time at local time ``received`` (see :class:`VenueClock`)."""
        return self.venue_clock.at(received)

    def now(self) -> tuple[int, int]:
        """(event time, local time) now, for an event Tapedeck creates."""
        local = self.clock()
        return self.event_time(local), local

    def publish(self, items: list[Item]) -> None:
        """Append ``items`` (market arrays, events, bad input) now, then hand them on."""
        if not self._opened or self._reopen:
            items = [*self._session_start(items[0] if items else None), *items]
        start = self.writer.next_offset
        slices: list[Slice] = []
        for item in items:
            if isinstance(item, Bad):
                self.writer.quarantine(item.record())
            elif isinstance(item, np.ndarray):
                if len(item):
                    at = self.writer.next_offset
                    self.writer.market(item)
                    self.venue_clock.saw(item)
                    slices.append(Slice(at, at + len(item), market=item.view(MARKET_RECORD)))
            elif isinstance(item, msgspec.Struct):
                at = self.writer.next_offset
                self.writer.event(item)
                slices.append(Slice(at, at + 1, control=(item,)))
        self.writer.flush()
        self.appended += self.writer.next_offset - start
        if slices:
            merged = _merge(slices)
            for subscriber in self.subscribers:
                subscriber(merged)

    def take_inbox(self) -> int:
        """Journal the commands other processes left in the session's inbox (in inbox order,
        exactly once: :meth:`JournalWriter.take_inbox`) and hand them on like any append."""
        start = self.writer.next_offset
        taken = self.writer.take_inbox()
        if taken:
            assert isinstance(self.log, EmbeddedLog)  # a Kafka journal takes none
            batch = self.log.reader(journal_topic(self.session)).read(start, taken)
            assert batch is not None
            events = tuple(decode(value) for value in batch.values())
            self.appended += taken
            for subscriber in self.subscribers:
                subscriber([Slice(start, start + taken, control=events)])
        return taken

    def _session_start(self, first: Item | None) -> list[msgspec.Struct]:
        ts, local = self.now()
        if isinstance(first, msgspec.Struct):  # the session opens when its first event happens
            ts, local = int(getattr(first, "ts_event", ts)), int(getattr(first, "ts_recv", local))
        started: list[msgspec.Struct] = []
        if not self._opened:
            started.append(SessionOpened(ts, local, self.session, self.instrument, self.source))
        elif self._reopen:
            started.append(SessionResumed(ts, local, self.session, "tape live restarted"))
        self._opened, self._reopen = True, False
        return started

    def close(self) -> None:
        """Flush and release the journal's writers."""
        self.writer.close()


def _merge(slices: list[Slice]) -> list[Slice]:
    """Adjacent slices of the same kind as one (what the runner gets from a file read)."""
    out = [slices[0]]
    for piece in slices[1:]:
        last = out[-1]
        if last.market is not None and piece.market is not None:
            market = np.concatenate([last.market, piece.market])
            out[-1] = Slice(last.start, piece.stop, market=market)
        elif last.market is None and piece.market is None:
            out[-1] = Slice(last.start, piece.stop, control=(*last.control, *piece.control))
        else:
            out.append(piece)
    return out
