"""Checking a rebuilt order book against the venue's own view of it (``tape book-check``).

* LOBSTER: every orderbook row (``<session>.oracle``) against the book after its message, all
  levels of both sides. The message file only reports events inside the first N levels, so the
  book keeps only N levels a side; when a price the book does not hold enters the window from
  below (deeper than every level the book holds), its size is taken from the row and the level
  counts as *resynced*. Any other difference is a mismatch.
* Binance: after each applied depth message (book update id ``u``), the book's best bid and ask
  (price and size) against the ``bookTicker`` with the greatest update id ``<= u``, provided a
  ticker with an id ``> u`` exists, which proves no change in between went unseen (Binance pushes
  a ticker on every change of the best levels). Messages while the book is unsynced or stale
  are not compared.
* B3 (top-of-book snapshots only): each quote against the book's level 1 after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events import decode
from engine.events.control import FeedGapDetected, SessionOpened
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from streams.book import book_config

__all__ = ["CheckError", "CheckReport", "Journal", "book_config", "check_session", "read_journal"]


class CheckError(Exception):
    """The session cannot be checked (missing, or no oracle); the message says why."""


@dataclass
class CheckReport:
    """Counts of a book check and the first mismatch in full."""

    session: str
    oracle: str
    compared: int = 0
    matched: int = 0
    mismatched: int = 0
    resynced: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    first_mismatch: dict[str, Any] | None = None

    def tally(self, matched: bool, details: dict[str, Any]) -> None:
        """Count one comparison; keep the ``details`` of the first mismatch."""
        self.compared += 1
        if matched:
            self.matched += 1
            return
        self.mismatched += 1
        if self.first_mismatch is None:
            self.first_mismatch = details

    @property
    def ok(self) -> bool:
        """True when nothing mismatched and something was compared."""
        return self.mismatched == 0 and self.compared > 0


@dataclass
class Journal:
    """A session journal read whole: market records with offsets, and its control events."""

    opened: SessionOpened
    records: np.ndarray[Any, Any]
    offsets: np.ndarray[Any, Any]
    gaps: int


def read_journal(log: EmbeddedLog, session: str) -> Journal:
    """Market records (with their journal offsets) and the header of a session."""
    topic = journal_topic(session)
    if not log.has_topic(topic):
        raise CheckError(
            f"no session {session!r} in {log.root} (no topic {topic}); ingest it first"
        )
    reader = log.reader(topic)
    chunks, offsets, opened, gaps = [], [], None, 0
    for batch in reader.batches(size=1 << 20):
        if isinstance(batch, FixedBatch):
            chunks.append(batch.view(MARKET_RECORD).copy())
            offsets.append(np.arange(batch.base_offset, batch.next_offset, dtype=np.int64))
        else:
            for value in batch.values():
                event = decode(value)
                opened = event if isinstance(event, SessionOpened) and opened is None else opened
                gaps += isinstance(event, FeedGapDetected)
    if opened is None:
        raise CheckError(f"session {session!r} has no session.opened event")
    empty = np.zeros(0, MARKET_RECORD)
    return Journal(
        opened,
        np.concatenate(chunks) if chunks else empty,
        np.concatenate(offsets) if offsets else np.zeros(0, np.int64),
        gaps,
    )


def check_session(log: EmbeddedLog, session: str) -> CheckReport:
    """Rebuild the session's book and compare it with the venue's oracle."""
    from engine.app.bookcheck import binance, lobster, quotes

    journal = read_journal(log, session)
    venue = journal.opened.instrument.venue
    if venue.startswith("BINANCE"):
        report = binance.check(journal, session)
    elif venue == "NASDAQ":
        report = lobster.check(log, journal, session)
    else:
        report = quotes.check(journal, session)
    report.gaps = journal.gaps
    return report
