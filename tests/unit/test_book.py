"""The book processor: batch-split invariance, snapshot/restore, L2 and L3 behaviour."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ingest_samples import BINANCE_USDM, LOBSTER_BOOKS, LOBSTER_MESSAGES, sample_lines

from engine.app.ingest import binance, lobster
from engine.app.ingest.source import Line
from engine.events.book import S_STALE, S_SYNCED
from engine.events.market import (
    BOOK_SNAPSHOT,
    F_FIRST,
    F_GAP,
    F_LAST,
    LEVEL_UPDATED,
    MARKET_RECORD,
    ORDER_ADDED,
    ORDER_DELETED,
    ORDER_EXECUTED,
    new_records,
)
from streams.book import BookConfig, BookProcessor


def _lines(raw: list[bytes]) -> list[Line]:
    return [Line(i, 0, x) for i, x in enumerate(raw, 1)]


def _records(items: Any) -> np.ndarray[Any, Any]:
    return np.concatenate([i for i in items if isinstance(i, np.ndarray)])


LOBSTER_RECORDS = _records(
    lobster.LobsterConverter(date(2012, 6, 21), "m", "b").convert(
        _lines(sample_lines(LOBSTER_MESSAGES)), _lines(sample_lines(LOBSTER_BOOKS))
    )
)
USDM_RECORDS = _records(
    binance.BinanceConverter(binance.instrument("usdm", "BTCUSDT"), True, "u").convert(
        _lines(sample_lines(BINANCE_USDM, 600))
    )
)
CASES = {
    "lobster": (LOBSTER_RECORDS, BookConfig(window=10, order_capacity=4, level_capacity=4)),
    "binance": (USDM_RECORDS, BookConfig(sequenced=True, level_capacity=64)),
}


def _run(records: np.ndarray[Any, Any], config: BookConfig, cuts: list[int]) -> tuple[bytes, bytes]:
    book, outs, start = BookProcessor(config), [], 0
    for cut in [*sorted(set(cuts)), len(records)]:
        outs.append(book.process(records[start:cut], start))
        start = cut
    return b"".join(o.tobytes() for o in outs), book.snapshot()


@pytest.mark.parametrize("case", sorted(CASES))
@given(data=st.data())
def test_batch_split_invariance(case: str, data: st.DataObject) -> None:
    records, config = CASES[case]
    cuts = data.draw(st.lists(st.integers(0, len(records)), max_size=12))
    assert _run(records, config, cuts) == _run(records, config, [])


@pytest.mark.parametrize("case", sorted(CASES))
def test_snapshot_restore_mid_stream(case: str) -> None:
    records, config = CASES[case]
    whole = BookProcessor(config)
    expected = whole.process(records, 0)
    half = len(records) // 2
    first = BookProcessor(config)
    head = first.process(records[:half], 0)
    resumed = BookProcessor.restore(first.snapshot())
    tail = resumed.process(records[half:], half)
    assert head.tobytes() + tail.tobytes() == expected.tobytes()
    assert resumed.snapshot() == whole.snapshot()


def test_emits_only_on_change_with_causation() -> None:
    tops = BookProcessor(BookConfig(window=10)).process(LOBSTER_RECORDS, 100)
    assert len(tops) < len(LOBSTER_RECORDS)
    assert (np.diff(tops["offset"].astype(np.int64)) > 0).all()
    assert int(tops["offset"][0]) >= 100
    bids = tops["bid_price"]
    assert (bids[:, :-1] >= bids[:, 1:]).all()  # best first
    asks = tops["ask_price"][:, 0]
    assert (asks > bids[:, 0]).all()  # never crossed


def _rec(t: Any, side: int, price: int, size: int, ident: int, flags: int = F_LAST) -> Any:
    r = new_records(t, 1).view(MARKET_RECORD)
    r["side"], r["price"], r["flags"] = side, price, flags
    r["size"], r["id"] = size, ident  # id: the order id or venue update id slot
    return r


def test_l3_orders_and_levels() -> None:
    book = BookProcessor(BookConfig(order_capacity=2))
    batch = np.concatenate(
        [
            _rec(ORDER_ADDED, 1, 100, 5, 1),
            _rec(ORDER_ADDED, 1, 100, 3, 2),
            _rec(ORDER_ADDED, -1, 105, 7, 3),
            _rec(ORDER_EXECUTED, 1, 100, 2, 1),
            _rec(ORDER_DELETED, -1, 105, 7, 3),
        ]
    )
    book.process(batch, 0)
    assert book.levels(1) == [(100, 6)]
    assert book.levels(-1) == []
    assert book.orders() == [(1, 1, 100, 3), (2, 1, 100, 3)]


def test_sequenced_snapshot_buffer_and_gap() -> None:
    book = BookProcessor(BookConfig(sequenced=True))
    early = _rec(LEVEL_UPDATED, 1, 99, 4, 11)  # received before the snapshot, u=11 > 10
    stale = _rec(LEVEL_UPDATED, 1, 98, 4, 9)  # u=9 <= lastUpdateId: discarded
    snap = np.concatenate(
        [
            _rec(BOOK_SNAPSHOT, 1, 100, 1, 10, F_FIRST),
            _rec(BOOK_SNAPSHOT, -1, 101, 2, 10, F_LAST),
        ]
    )
    book.process(np.concatenate([stale, early, snap]), 0)
    assert book.levels(1) == [(100, 1), (99, 4)]
    assert book.status == S_SYNCED
    book.process(_rec(LEVEL_UPDATED, 1, 100, 0, 12, F_LAST | F_GAP), 4)
    assert book.status == S_SYNCED | S_STALE
    book.process(_rec(LEVEL_UPDATED, 1, 97, 1, 13), 5)
    assert book.levels(1) == [(100, 1), (99, 4)]  # stale: nothing applied until a snapshot
