"""The book processor with what the new importers bring: Databento's modify, fill and clear
records, and ``feed.book_described`` (the source's depth, whether quotes are the book)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events.control import BookDescribed, InstrumentSpec
from engine.events.market import (
    BOOK_CLEARED,
    F_LAST,
    MARKET_RECORD,
    ORDER_ADDED,
    ORDER_CANCELLED,
    ORDER_FILLED,
    ORDER_MODIFIED,
    QUOTE,
    new_records,
)
from engine.runtime.processor import Slice, StageContext
from streams.book import BookConfig, BookProcessor, book_config
from streams.book.stage import BookStage

NASDAQ = InstrumentSpec("X", "NASDAQ", "America/New_York", 4, 0, 100, 1, "USD")


def _record(t: Any, side: int, price: int, size: int, oid: int) -> np.ndarray[Any, Any]:
    r = new_records(t, 1).view(MARKET_RECORD)
    r["side"], r["price"], r["size"], r["id"], r["flags"] = side, price, size, oid, F_LAST
    return r


def _apply(*records: np.ndarray[Any, Any]) -> BookProcessor:
    book = BookProcessor(BookConfig())
    book.process(np.concatenate(records), 0)
    return book


def test_modify_moves_the_order_and_fill_changes_nothing() -> None:
    book = _apply(
        _record(ORDER_ADDED, 1, 100, 5, 1),
        _record(ORDER_ADDED, 1, 100, 2, 2),
        _record(ORDER_FILLED, 1, 100, 4, 1),  # informational: the modify below does it
        _record(ORDER_MODIFIED, 1, 100, 1, 1),  # 5 -> 1 at the same price
        _record(ORDER_MODIFIED, 1, 99, 2, 2),  # order 2 moves down a tick
        _record(ORDER_MODIFIED, -1, 105, 3, 7),  # an order the book never saw: added
    )
    assert book.levels(1) == [(100, 1), (99, 2)]
    assert book.levels(-1) == [(105, 3)]
    assert book.orders() == [(1, 1, 100, 1), (2, 1, 99, 2), (7, -1, 105, 3)]


def test_modify_to_zero_removes_and_clear_empties() -> None:
    book = _apply(
        _record(ORDER_ADDED, 1, 100, 5, 1),
        _record(ORDER_ADDED, -1, 101, 5, 2),
        _record(ORDER_MODIFIED, 1, 100, 0, 1),
    )
    assert (book.levels(1), book.orders()) == ([], [(2, -1, 101, 5)])
    book.process(_record(BOOK_CLEARED, 0, 0, 0, 0), 3)
    assert (book.levels(1), book.levels(-1), book.orders()) == ([], [], [])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 2, 3]), st.integers(1, 6), st.integers(0, 4)), max_size=60
    ),
    st.integers(1, 20),
)
def test_new_actions_do_not_depend_on_batching(ops: list[tuple[int, int, int]], cut: int) -> None:
    types = (ORDER_ADDED, ORDER_CANCELLED, ORDER_MODIFIED, ORDER_FILLED)
    records = [
        _record(types[t], 1 if oid % 2 else -1, 100 + (oid % 2) * 10 - size, size + 1, oid)
        for t, oid, size in ops
    ]
    if not records:
        return
    joined = np.concatenate(records)
    whole, parts = BookProcessor(BookConfig()), BookProcessor(BookConfig())
    a = whole.process(joined, 0)
    b = parts.process(joined[:cut], 0).tobytes() + parts.process(joined[cut:], cut).tobytes()
    assert a.tobytes() == b
    assert whole.snapshot() == parts.snapshot()


def test_stage_follows_book_described() -> None:
    stage = BookStage(_context())
    stage.process(Slice(0, 1, control=(BookDescribed(0, 0, 1, False, "1 level"),)))
    adds = np.concatenate([_record(ORDER_ADDED, 1, p, 1, p) for p in (100, 101, 99)])
    stage.process(Slice(1, 4, market=adds))
    assert stage.book.levels(1) == [(101, 1)]  # the window follows the described depth
    restored = BookStage(_context())
    restored.restore(stage.snapshot())
    assert restored.book.config.window == 1


def test_quotes_are_the_book_only_when_described_so() -> None:
    quote = new_records(QUOTE, 1)
    quote["bid_price"], quote["bid_size"], quote["ask_price"], quote["ask_size"] = 99, 1, 101, 2
    quote["flags"] = F_LAST
    stage = BookStage(_context())
    stage.process(Slice(0, 1, control=(BookDescribed(0, 0, 1, True, "quotes"),)))
    stage.process(Slice(1, 2, market=quote.view(MARKET_RECORD)))
    assert (stage.book.levels(1), stage.book.levels(-1)) == ([(99, 1)], [(101, 2)])


def _context() -> StageContext:
    return StageContext("s", NASDAQ, dataclasses.asdict(book_config(NASDAQ)), 0)
