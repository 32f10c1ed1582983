"""Binance: the book's best bid and ask after each applied depth message against bookTicker."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.app.bookcheck import CheckReport, Journal
from engine.app.bookcheck.quotes import book_level1, quote_level1
from engine.events.book import S_SYNCED
from engine.events.market import F_LAST, LEVEL_UPDATED, QUOTE
from streams.book import BookProcessor


def _state_at(tops: np.ndarray[Any, Any], offsets: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Index of the last top emitted at or before each offset (-1: none yet)."""
    return np.searchsorted(tops["offset"], offsets, side="right") - 1


def check(journal: Journal, session: str) -> CheckReport:
    """Compare at every applied depth message; see :mod:`engine.app.bookcheck` for the rule."""
    records, offsets = journal.records, journal.offsets
    book = BookProcessor(journal.book)
    tops = book.process(records, int(offsets[0])) if len(records) else book.process(records, 0)
    is_quote = records["type_id"] == QUOTE.type_id
    quotes, q_offsets = records[is_quote].view(QUOTE.dtype), offsets[is_quote]
    order = np.argsort(quotes["update_id"], kind="stable")
    q_ids = quotes["update_id"][order]
    report = CheckReport(session, f"bookTicker ({len(quotes)} quotes)")
    ends = (records["type_id"] == LEVEL_UPDATED.type_id) & ((records["flags"] & F_LAST) != 0)
    d_ids, d_offsets = records["id"][ends], offsets[ends]
    state = _state_at(tops, d_offsets)
    skipped = {"book not synced or stale": 0, "message not applied": 0, "no ticker after it": 0}
    for u, offset, s in zip(d_ids.tolist(), d_offsets.tolist(), state.tolist(), strict=True):
        top = tops[s] if s >= 0 else None
        if top is None or int(top["status"]) != S_SYNCED:
            skipped["book not synced or stale"] += 1
            continue
        if int(top["update_id"]) != u:
            skipped["message not applied"] += 1  # at or below the snapshot's lastUpdateId
            continue
        j = int(np.searchsorted(q_ids, u, side="right"))
        if j == 0 or j == len(q_ids):
            skipped["no ticker after it"] += 1
            continue
        quote, q_offset = quotes[order[j - 1]], int(q_offsets[order[j - 1]])
        got, want = book_level1(top), quote_level1(quote)
        report.tally(
            got == want,
            {
                "depth_offset": offset,
                "depth_u": u,
                "book (bid, bid size, ask, ask size)": got,
                "ticker_offset": q_offset,
                "ticker_u": int(quote["update_id"]),
                "ticker (bid, bid size, ask, ask size)": want,
            },
        )
    report.skipped = {k: v for k, v in skipped.items() if v}
    return report
