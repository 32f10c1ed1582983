"""Session journals: the one sequenced input of a pipeline partition, and its quarantine.

A session ``NAME`` has two topics:

``NAME.journal``
    Every input event in one total order: market records (64-byte fixed-width) in long runs,
    with low-rate msgpack events (session open/close, clock, commands, gaps) between them.
``NAME.quarantine``
    Input that could not become events (``quarantine.record_quarantined``), never dropped.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from engine.events import encode
from engine.events.control import OperatorCommand, RecordQuarantined
from engine.events.market import RECORD_SIZE, TIMESTAMP_OFFSET
from engine.log import EmbeddedLog, PartitionWriter, TopicCodec, TopicConfig

JOURNAL_SCHEMA = "tapedeck.journal"
JOURNAL_VERSION = 1


def journal_topic(session: str) -> str:
    """Topic name of a session's journal."""
    return f"{session}.journal"


def quarantine_topic(session: str) -> str:
    """Topic name of a session's quarantine."""
    return f"{session}.quarantine"


def create_session_topics(log: EmbeddedLog, session: str) -> None:
    """Create the journal and quarantine topics of ``session`` (no-op if they exist)."""
    log.create_topic(
        journal_topic(session),
        TopicConfig(
            JOURNAL_SCHEMA,
            JOURNAL_VERSION,
            TopicCodec.MIXED,
            record_size=RECORD_SIZE,
            timestamp_offset=TIMESTAMP_OFFSET,
        ),
    )
    log.create_topic(
        quarantine_topic(session),
        TopicConfig("quarantine.record_quarantined", 1, TopicCodec.MSGPACK),
    )


class JournalWriter:
    """Appends a session's events in arrival order, batching runs of market records.

    Market records and low-rate events are queued in one sequence; ``flush`` writes each run
    of consecutive market records as one fixed-width batch and each run of low-rate events as
    one variable batch, so the journal order is exactly the order of the calls.
    """

    def __init__(self, log: EmbeddedLog, session: str, batch_records: int = 65536) -> None:
        create_session_topics(log, session)
        self.session = session
        self.batch_records = batch_records
        self._journal: PartitionWriter = log.writer(journal_topic(session))
        self._quarantine: PartitionWriter = log.writer(quarantine_topic(session))
        self._queue: list[np.ndarray[Any, Any] | msgspec.Struct] = []
        self._queued_records = 0
        self.quarantined = 0

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
            self._journal.append_records([(e.ts_event, None, None, encode(e)) for e in run])


def append_command(log: EmbeddedLog, session: str, event: OperatorCommand) -> int:
    """Append one operator command to ``session``'s journal now; the offset it got.

    Takes the journal's single writer for just this append (a process holding it, such as a
    feed writing the session, makes this raise ``PartitionLockedError``: retry, or hand the
    command to that process) and flushes it under the log's fsync policy.
    """
    with log.writer(journal_topic(session)) as writer:
        offset = writer.append_records([(event.ts_event, None, None, encode(event))])
        writer.flush()
    return offset
