"""A session journal read whole: its market records with their offsets, and what its control
events say about the instrument and its book. For checks over a whole session (``tape
book-check``) and for an ingest that continues a session (``tape ingest binance --after``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events import decode
from engine.events.control import BookDescribed, FeedGapDetected, SessionOpened
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from streams.book import BookConfig, book_config, described


class SessionError(Exception):
    """The session does not exist or has no ``session.opened``; the message says what to do."""


@dataclass
class Journal:
    """A session journal read whole: market records with offsets, and its control events."""

    opened: SessionOpened
    records: np.ndarray[Any, Any]
    offsets: np.ndarray[Any, Any]
    gaps: int
    described: list[BookDescribed] = field(default_factory=list)

    @property
    def book(self) -> BookConfig:
        """How this session's book is built: its venue's rules, then what the journal's
        ``feed.book_described`` events say (importers write them before any market record)."""
        config = book_config(self.opened.instrument)
        for event in self.described:
            config = described(config, event)
        return config


def read_session(log: EmbeddedLog, session: str) -> Journal:
    """Market records (with their journal offsets) and the header of a session."""
    topic = journal_topic(session)
    if not log.has_topic(topic):
        raise SessionError(
            f"no session {session!r} in {log.root} (no topic {topic}); ingest it first"
        )
    reader = log.reader(topic)
    chunks, offsets, opened, gaps = [], [], None, 0
    descriptions: list[BookDescribed] = []
    for batch in reader.batches(size=1 << 20):
        if isinstance(batch, FixedBatch):
            chunks.append(batch.view(MARKET_RECORD).copy())
            offsets.append(np.arange(batch.base_offset, batch.next_offset, dtype=np.int64))
        else:
            for value in batch.values():
                event = decode(value)
                opened = event if isinstance(event, SessionOpened) and opened is None else opened
                gaps += isinstance(event, FeedGapDetected)
                if isinstance(event, BookDescribed):
                    descriptions.append(event)
    if opened is None:
        raise SessionError(f"session {session!r} has no session.opened event")
    empty = np.zeros(0, MARKET_RECORD)
    return Journal(
        opened,
        np.concatenate(chunks) if chunks else empty,
        np.concatenate(offsets) if offsets else np.zeros(0, np.int64),
        gaps,
        descriptions,
    )
