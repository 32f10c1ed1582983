"""A session journal written straight to a Kafka cluster: the live session's writer on Kafka.

:class:`KafkaJournalWriter` has the calls of :class:`~engine.log.journal.JournalWriter` (queue
market records and events in arrival order, ``flush``) and writes each journal event as one
Kafka record exactly as ``tape mirror`` would copy it there: the event's canonical bytes as
value (a 64-byte market record, or a msgpack event), the instrument symbol as key, the event
time (ms) as timestamp, and the headers of :mod:`engine.log.headers` with the event's own
journal offset as cause. A worker (:mod:`engine.app.worker`) consumes it as it consumes a
mirrored journal, and ``tape mirror`` copies it back to a data directory unchanged.

Journal offsets are counted here (0, 1, 2, ...), never taken from Kafka offsets. ``flush``
sends at once (``linger.ms`` 0) and does not wait for the acknowledgement: nothing in the live
session acts on an append before the cluster has it, because everything acts on what the
worker consumed, and a consumer only sees records below the high watermark (written to every
in-sync replica, which ``acks=all`` waits for too). Waiting for each acknowledgement in the
append would only block the feed (measured: the 10x burst of ``bench/live_latency.py`` fell
15 s behind). Each ``flush`` serves the delivery reports that have come back and raises if a
record failed; ``close`` waits for all of them.

Only a new journal is written: the writer refuses a session whose journal topic already
holds records (continuing a Kafka session after a restart is not supported yet; see
docs/live.md, "Live on Kafka").
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from engine.events import encode
from engine.events.catalogue import type_of_value
from engine.events.control import RecordQuarantined
from engine.events.market import RECORD_SIZE, TIMESTAMP_OFFSET
from engine.log.errors import LogError
from engine.log.headers import event_headers
from engine.log.journal import (
    JOURNAL_CONFIG,
    QUARANTINE_CONFIG,
    journal_topic,
    quarantine_topic,
)
from engine.log.kafka.clients import KafkaProducer
from engine.log.kafka.cluster import KafkaLog

_RECORD = np.dtype((np.void, RECORD_SIZE))


class KafkaJournalWriter:
    """Appends a new session's events to its journal topic on Kafka; see the module doc."""

    def __init__(self, log: KafkaLog, session: str, key: bytes) -> None:
        journal, quarantine = journal_topic(session), quarantine_topic(session)
        if log.has_topic(journal) and log.watermarks(journal, 0)[1] > 0:
            raise LogError(
                f"session {session!r} already has a journal on {log.url} ({journal}); a live "
                "session on Kafka always starts a new journal: give it a new --session name"
            )
        log.create_topic(journal, JOURNAL_CONFIG)
        log.create_topic(quarantine, QUARANTINE_CONFIG)
        self.log, self.session, self.key = log, session, key
        self._journal, self._quarantine = journal, quarantine
        self._producer = KafkaProducer(log, extra={"linger.ms": 0})
        self._next = 0
        self.quarantined = 0

    @property
    def next_offset(self) -> int:
        """Journal offset the next queued event will get."""
        return self._next

    def market(self, records: np.ndarray[Any, Any]) -> None:
        """Queue market records (any market dtype; 64 bytes each), one Kafka record each."""
        produce, topic, key = self._producer.produce, self._journal, self.key
        raw = records.view(_RECORD)
        stamps = records.view(np.uint8).reshape(len(records), RECORD_SIZE)
        times = stamps[:, TIMESTAMP_OFFSET : TIMESTAMP_OFFSET + 8].copy().view("<i8")[:, 0]
        for value, stamp in zip(raw.tolist(), times.tolist(), strict=True):
            et = type_of_value(value)
            produce(topic, value, key, 0, stamp, event_headers(et.name, et.version, self._next))
            self._next += 1

    def event(self, event: msgspec.Struct) -> None:
        """Queue one low-rate event."""
        value = encode(event)
        et = type_of_value(value)
        stamp = int(getattr(event, "ts_event", 0))
        headers = event_headers(et.name, et.version, self._next)
        self._producer.produce(self._journal, value, self.key, 0, stamp, headers)
        self._next += 1

    def quarantine(self, record: RecordQuarantined) -> None:
        """Keep a record that could not be converted (acknowledged at the next flush)."""
        value = encode(record)
        et = type_of_value(value)
        headers = event_headers(et.name, et.version, self.quarantined)
        self._producer.produce(self._quarantine, value, self.key, 0, record.ts_recv, headers)
        self.quarantined += 1

    def take_inbox(self) -> int:
        """Operator commands reach a Kafka journal only by ``tape live``'s own events: the
        inbox is a data directory's (docs/live.md, "Live on Kafka"). Nothing to take."""
        return 0

    def flush(self) -> None:
        """Send everything queued now; raise if an earlier record was not delivered."""
        self._producer.check()

    def close(self) -> None:
        """Flush and let go of the producer."""
        self._producer.close()
