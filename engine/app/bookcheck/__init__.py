"""Checking a rebuilt order book against the venue's own view of it (``tape book-check``).

* LOBSTER: every orderbook row (``<session>.oracle``) against the book after its message, all
  levels of both sides. The message file only reports events inside the file's N levels, so the
  book keeps only N levels a side (its window follows the depth ``feed.book_described`` gives,
  10 without one); when a price the book does not hold enters the window from below (deeper
  than every level the book holds), its size is taken from the row and the level counts as
  *resynced*. Any other difference is a mismatch.
* Binance: after each applied depth message (book update id ``u``), the book's best bid and ask
  (price and size) against the ``bookTicker`` with the greatest update id ``<= u``, provided a
  ticker with an id ``> u`` exists, which proves no change in between went unseen (Binance pushes
  a ticker on every change of the best levels). Messages while the book is unsynced or stale
  are not compared.
* Quote-built books (B3 snapshots, Tardis quotes, Databento MBP-1): each quote that ends a
  message against the book's level 1 after it.
* Everything else (Databento MBO and MBP-10, Tardis book files, a LOBSTER message file without
  its orderbook): no independent oracle, so :mod:`engine.app.bookcheck.consistency` rebuilds the
  book a second, independent way and checks it at every message: same levels as the ``book``
  processor, never crossed, no negative size, no cancel/modify/fill of an order not in the book.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.app.ingest.journals import Journal, SessionError, read_session
from engine.app.ingest.session import oracle_topic
from engine.log import EmbeddedLog

__all__ = ["CheckError", "CheckReport", "Journal", "check_session", "read_journal"]


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
    counts: dict[str, int] = field(default_factory=dict)
    """What else the check counted, e.g. records of each L3 action."""
    notes: list[str] = field(default_factory=list)

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


def read_journal(log: EmbeddedLog, session: str) -> Journal:
    """The session's journal read whole (see :func:`engine.app.ingest.journals.read_session`)."""
    try:
        return read_session(log, session)
    except SessionError as exc:
        raise CheckError(str(exc)) from None


def check_session(log: EmbeddedLog, session: str) -> CheckReport:
    """Rebuild the session's book and compare it with the best oracle the session has."""
    from engine.app.bookcheck import binance, consistency, lobster, quotes

    journal = read_journal(log, session)
    config = journal.book
    if log.has_topic(oracle_topic(session)):
        report = lobster.check(log, journal, session)
    elif config.sequenced:
        report = binance.check(journal, session)
    elif config.quote_book:
        report = quotes.check(journal, session)
    else:
        report = consistency.check(journal, session)
    report.gaps = journal.gaps
    return report
