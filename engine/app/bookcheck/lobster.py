"""LOBSTER: every orderbook row against the rebuilt book, with window resyncs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.app.bookcheck import CheckError, CheckReport, Journal
from engine.app.ingest.session import oracle_topic
from engine.events.book import BOOK_BAND
from engine.events.market import F_LAST, LEVEL_UPDATED, new_records
from engine.log import EmbeddedLog
from streams.book import BookProcessor


def _oracle(log: EmbeddedLog, session: str) -> np.ndarray[Any, Any]:
    from engine.events.book import BOOK_TOP_DTYPE

    topic = oracle_topic(session)
    if not log.has_topic(topic):
        raise CheckError(f"session {session!r} has no oracle topic {topic}; re-ingest it")
    chunks = [
        np.asarray(batch.records).view(BOOK_TOP_DTYPE).copy()
        for batch in log.reader(topic).batches()
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0, BOOK_TOP_DTYPE)


def _side(row: Any, prefix: str) -> list[tuple[int, int]]:
    return [
        (int(p), int(s))
        for p, s in zip(row[f"{prefix}_price"], row[f"{prefix}_size"], strict=True)
        if s
    ]


def _resync(book: BookProcessor, side: int, want: list[tuple[int, int]], offset: int) -> int:
    """Add oracle levels deeper than every level the book holds; returns how many."""
    have = book.levels(side)
    if len(have) >= len(want):
        return 0
    worst = have[-1][0] if have else None
    missing = [(p, s) for p, s in want if worst is None or (p < worst if side > 0 else p > worst)]
    if not missing:
        return 0
    records = new_records(LEVEL_UPDATED, len(missing))
    records["side"] = side
    records["price"] = [p for p, _ in missing]
    records["size"] = [s for _, s in missing]
    records["flags"][-1] = F_LAST
    book.process(records, offset)
    return len(missing)


def _rows(oracle: np.ndarray[Any, Any]) -> Iterator[tuple[int, dict[str, list[tuple[int, int]]]]]:
    """(journal offset, levels of each side) of every orderbook row: a ``book.top`` record,
    with the ``book.band`` records that follow it for files deeper than ten levels."""
    offset: int = -1
    row: dict[str, list[tuple[int, int]]] = {"bid": [], "ask": []}
    for record in oracle:
        if int(record["type_id"]) != BOOK_BAND.type_id:
            if offset >= 0:
                yield offset, row
            offset, row = int(record["offset"]), {"bid": [], "ask": []}
        for side in ("bid", "ask"):
            row[side] += _side(record, side)
    if offset >= 0:
        yield offset, row


def check(log: EmbeddedLog, journal: Journal, session: str) -> CheckReport:
    """Compare all levels of every orderbook row; see :mod:`engine.app.bookcheck`."""
    oracle = _oracle(log, session)
    rows = list(_rows(oracle))
    report = CheckReport(session, f"{oracle_topic(session)} ({len(rows)} orderbook rows)")
    book = BookProcessor(journal.book)
    done = 0  # records of the journal applied so far
    for offset, want in rows:
        upto = int(np.searchsorted(journal.offsets, offset, side="right"))
        if upto > done:
            book.process(journal.records[done:upto], int(journal.offsets[done]))
            done = upto
        for side, name in ((1, "bid"), (-1, "ask")):
            report.resynced += _resync(book, side, want[name], offset)
        got = {"bid": book.levels(1), "ask": book.levels(-1)}
        details = {"journal_offset": offset, "oracle_row": report.compared + 1}
        report.tally(got == want, {**details, "book": got, "orderbook_row": want})
    return report
