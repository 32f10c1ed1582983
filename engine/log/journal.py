"""Session journals: the one sequenced input of a pipeline partition, and its quarantine.

A session ``NAME`` has these topics:

``NAME.journal``
    Every input event in one total order: market records (64-byte fixed-width) in long runs,
    with low-rate msgpack events (session open/close, clock, commands, gaps) between them.
``NAME.quarantine``
    Input that could not become events (``quarantine.record_quarantined``), never dropped.
``NAME.inbox``
    Commands from other processes (operators, a retraining gate) waiting for the journal's
    writer to sequence them; created when first needed.

Everything enters a journal through a :class:`JournalWriter`, the partition's single writer: an
importer's, a live feed's, or :func:`append_control`'s. A journal has one writer at a time, so
a command for a session that a live feed is writing cannot be appended by another process; it
goes to the session's inbox, and the feed's writer moves it into the journal, in order, when
the feed calls :meth:`JournalWriter.take_inbox` (a live feed does so in its loop; see
docs/models.md, "The lifecycle"). Each such event is journaled with the record key
``inbox:<inbox offset>``, so a writer reopened after a crash knows what it already took.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import msgspec
import numpy as np

from engine.events import encode
from engine.events.control import RecordQuarantined
from engine.events.market import RECORD_SIZE, TIMESTAMP_OFFSET
from engine.log import EmbeddedLog, PartitionWriter, RecordBatch, TopicCodec, TopicConfig
from engine.log.errors import PartitionLockedError

JOURNAL_SCHEMA = "tapedeck.journal"
JOURNAL_VERSION = 1


def journal_topic(session: str) -> str:
    """Topic name of a session's journal."""
    return f"{session}.journal"


def quarantine_topic(session: str) -> str:
    """Topic name of a session's quarantine."""
    return f"{session}.quarantine"


def inbox_topic(session: str) -> str:
    """Topic name of a session's inbox of commands from other processes."""
    return f"{session}.inbox"


INBOX_KEY = b"inbox:"
INBOX_WAIT_SECONDS = 5.0
"""How long :func:`append_control` waits for another process appending to the same inbox."""


class _Keyed(NamedTuple):
    """A low-rate event already encoded, with the record key it is journaled under."""

    ts_event: int
    key: bytes
    value: bytes


JOURNAL_CONFIG = TopicConfig(
    JOURNAL_SCHEMA,
    JOURNAL_VERSION,
    TopicCodec.MIXED,
    record_size=RECORD_SIZE,
    timestamp_offset=TIMESTAMP_OFFSET,
)
"""Settings of every session journal topic (embedded or on Kafka)."""
QUARANTINE_CONFIG = TopicConfig("quarantine.record_quarantined", 1, TopicCodec.MSGPACK)
"""Settings of every session quarantine topic."""


def create_session_topics(log: EmbeddedLog, session: str) -> None:
    """Create the journal and quarantine topics of ``session`` (no-op if they exist)."""
    log.create_topic(journal_topic(session), JOURNAL_CONFIG)
    log.create_topic(quarantine_topic(session), QUARANTINE_CONFIG)


class JournalWriter:
    """Appends a session's events in arrival order, batching runs of market records.

    Market records and low-rate events are queued in one sequence; ``flush`` writes each run
    of consecutive market records as one fixed-width batch and each run of low-rate events as
    one variable batch, so the journal order is exactly the order of the calls.
    """

    def __init__(self, log: EmbeddedLog, session: str, batch_records: int = 65536) -> None:
        create_session_topics(log, session)
        self.log, self.session = log, session
        self.batch_records = batch_records
        self._journal: PartitionWriter = log.writer(journal_topic(session))
        self._quarantine: PartitionWriter = log.writer(quarantine_topic(session))
        self._queue: list[np.ndarray[Any, Any] | msgspec.Struct | _Keyed] = []
        self._queued_records = 0
        self.quarantined = 0
        self._inbox_next: int | None = None
        """Inbox offset of the first command not yet journaled (found on first use)."""

    @property
    def next_offset(self) -> int:
        """Journal offset the next queued event will get."""
        return self._journal.next_offset + self._queued_records

    def market(self, records: np.ndarray[Any, Any]) -> None:
        """Queue market records (any market dtype; 64 bytes each)."""
        if len(records):
            self._queue.append(records)
            self._queued_records += len(records)
            if self._queued_records >= self.batch_records:
                self.flush()

    def event(self, event: msgspec.Struct) -> None:
        """Queue one low-rate event."""
        self._queue.append(event)
        self._queued_records += 1

    def take_inbox(self) -> int:
        """Journal the commands waiting in the session's inbox, in inbox order, after
        everything queued so far, and flush; how many were taken."""
        topic = inbox_topic(self.session)
        if not self.log.has_topic(topic):
            return 0
        if self._inbox_next is None:
            self._inbox_next = self._journaled_inbox()
        reader, taken = self.log.reader(topic), 0
        while (batch := reader.read(self._inbox_next + taken)) is not None:
            for ts, _, _, value in getattr(batch, "records", []):
                key = INBOX_KEY + str(self._inbox_next + taken).encode()
                self._queue.append(_Keyed(ts, key, value))
                self._queued_records += 1
                taken += 1
        if taken:
            self.flush()
            self._inbox_next += taken
        return taken

    def _journaled_inbox(self) -> int:
        """How many inbox commands the journal already holds (from their record keys)."""
        reader, offset, count = self.log.reader(journal_topic(self.session)), 0, 0
        while (batch := reader.read(offset)) is not None:
            if isinstance(batch, RecordBatch):
                for _, key, _, _ in batch.records:
                    if key is not None and key.startswith(INBOX_KEY):
                        count = max(count, int(key[len(INBOX_KEY) :]) + 1)
            offset = batch.next_offset
        return count

    def quarantine(self, record: RecordQuarantined) -> None:
        """Keep a record that could not be converted (written at once: it is rare)."""
        self._quarantine.append_records([(record.ts_recv, None, None, encode(record))])
        self.quarantined += 1

    def flush(self) -> None:
        """Write everything queued, in order."""
        run: list[Any] = []
        for item in [*self._queue, None]:
            if run and (
                item is None or isinstance(item, np.ndarray) != isinstance(run[0], np.ndarray)
            ):
                self._write_run(run)
                run = []
            if item is not None:
                run.append(item)
        self._queue.clear()
        self._queued_records = 0

    def close(self) -> None:
        """Flush and release the journal's writer locks."""
        self.flush()
        self._journal.close()
        self._quarantine.close()

    def _write_run(self, run: list[Any]) -> None:
        if isinstance(run[0], np.ndarray):
            raw = np.concatenate([r.view(np.dtype((np.void, RECORD_SIZE))) for r in run])
            self._journal.append_array(raw)
        else:
            self._journal.append_records(
                [
                    (e.ts_event, e.key, None, e.value)
                    if isinstance(e, _Keyed)
                    else (e.ts_event, None, None, encode(e))
                    for e in run
                ]
            )


def append_control(
    log: EmbeddedLog, session: str, events: list[msgspec.Struct]
) -> list[int] | None:
    """Journal low-rate events (operator commands, promotions) into ``session``.

    When no process is writing the journal, they are appended now, through a
    :class:`JournalWriter` (after any commands still waiting in the inbox), and their journal
    offsets are returned. When a live process holds the journal, they are put in the
    session's inbox for that process to journal (see the module docstring), and None is
    returned.
    """
    try:
        writer = JournalWriter(log, session)
    except PartitionLockedError:
        _to_inbox(log, session, events)
        return None
    try:
        writer.take_inbox()
        first = writer.next_offset
        for event in events:
            writer.event(event)
        writer.flush()
        return list(range(first, first + len(events)))
    finally:
        writer.close()


def _to_inbox(log: EmbeddedLog, session: str, events: list[msgspec.Struct]) -> None:
    topic = inbox_topic(session)
    log.create_topic(topic, TopicConfig("tapedeck.inbox", 1, TopicCodec.MSGPACK))
    deadline = time.monotonic() + INBOX_WAIT_SECONDS
    while True:
        try:
            writer = log.writer(topic)
            break
        except PartitionLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # another command is being put in the inbox right now
    try:
        writer.append_records(
            [(int(getattr(e, "ts_event", 0)), None, None, encode(e)) for e in events]
        )
        writer.flush()
    finally:
        writer.close()
