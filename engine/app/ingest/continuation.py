"""Starting a Binance recording from the final book of the one it continues (``--after``).

A recorder that runs for days writes one file a day, and only the first holds a REST depth
snapshot: the next file's updates continue the previous file's depth chain. This module reads
the session that ingested the previous file, rebuilds its book to the end and hands the
converter what it needs to go on: the final levels (written as a ``market.book_snapshot`` at
the previous session's last update id) and the last ``u`` its depth chain reached, which the
converter checks the first update against (a break is a gap, as anywhere in a recording).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.app.ingest.journals import SessionError, read_session
from engine.app.ingest.session import IngestError, read_manifest
from engine.events.book import S_STALE, S_SYNCED
from engine.events.control import InstrumentSpec
from engine.events.market import LEVEL_UPDATED
from engine.log import EmbeddedLog
from streams.book import BookProcessor
from streams.book.kernel import M_UPDATE_ID


@dataclass(frozen=True)
class FinalBook:
    """Where a session ended: its book, the update id it reflects, and the depth chain's end."""

    session: str
    fingerprint: str
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    update_id: int
    last_u: int
    ts: int
    """Receive time of the session's last market record."""


def final_book(log: EmbeddedLog, session: str, spec: InstrumentSpec) -> FinalBook:
    """The final book of ``session``, which must be a synced, fresh book of the same instrument."""
    manifest = read_manifest(log, session)
    if manifest is None or manifest.status != "complete":
        raise IngestError(f"--after {session}: no completely ingested session of that name")
    try:
        journal = read_session(log, session)
    except SessionError as exc:
        raise IngestError(f"--after {session}: {exc}") from None
    theirs = journal.opened.instrument
    if (theirs.symbol, theirs.venue, theirs.price_scale, theirs.size_scale) != (
        spec.symbol, spec.venue, spec.price_scale, spec.size_scale,
    ):  # fmt: skip
        raise IngestError(
            f"--after {session}: it holds {theirs.symbol} on {theirs.venue} at scales "
            f"{theirs.price_scale}/{theirs.size_scale}, this recording {spec.symbol} on "
            f"{spec.venue} at {spec.price_scale}/{spec.size_scale}"
        )
    records = journal.records
    book = BookProcessor(journal.book)
    book.process(records, int(journal.offsets[0]) if len(records) else 0)
    if book.status != S_SYNCED:
        state = "stale after a gap" if book.status & S_STALE else "never synced by a snapshot"
        raise IngestError(
            f"--after {session}: its book ends {state}, so there is no book to continue from"
        )
    depth = records[records["type_id"] == LEVEL_UPDATED.type_id]
    last_u = int(depth["id"][-1]) if len(depth) else int(book.meta[M_UPDATE_ID])
    return FinalBook(
        session,
        manifest.fingerprint,
        book.levels(1),
        book.levels(-1),
        int(book.meta[M_UPDATE_ID]),
        last_u,
        int(np.max(records["ts_recv"])) if len(records) else 0,
    )
