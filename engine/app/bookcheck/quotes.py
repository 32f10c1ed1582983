"""Quote-built books (B3, Tardis quotes, Databento MBP-1): each quote against the book's
level 1 after it. Only quotes that end their source message (F_LAST) are compared: inside a
message (a Databento event of several records) the book is not yet consistent."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.bookcheck import CheckReport, Journal
from engine.events.market import F_LAST, QUOTE
from streams.book import BookProcessor


def check(journal: Journal, session: str) -> CheckReport:
    """The book built from quotes must show each quote's level 1 right after it."""
    records, offsets = journal.records, journal.offsets
    report = CheckReport(session, "the quotes themselves (level 1 only; no independent oracle)")
    book = BookProcessor(journal.book)
    tops = book.process(records, int(offsets[0]) if len(offsets) else 0)
    is_quote = (records["type_id"] == QUOTE.type_id) & ((records["flags"] & F_LAST) != 0)
    quotes, q_offsets = records[is_quote].view(QUOTE.dtype), offsets[is_quote]
    state = np.searchsorted(tops["offset"], q_offsets, side="right") - 1
    for quote, offset, s in zip(quotes, q_offsets.tolist(), state.tolist(), strict=True):
        got = book_level1(tops[s]) if s >= 0 else None
        want = quote_level1(quote)
        report.tally(got == want, {"quote_offset": offset, "book": got, "quote": want})
    return report


def book_level1(top: Any) -> tuple[int, int, int, int]:
    """(bid price, bid size, ask price, ask size) of a ``book.top`` record."""
    return (
        int(top["bid_price"][0]),
        int(top["bid_size"][0]),
        int(top["ask_price"][0]),
        int(top["ask_size"][0]),
    )


def quote_level1(quote: Any) -> tuple[int, int, int, int]:
    """(bid price, bid size, ask price, ask size) of a ``market.quote`` record."""
    return (
        int(quote["bid_price"]),
        int(quote["bid_size"]),
        int(quote["ask_price"]),
        int(quote["ask_size"]),
    )
