"""Tardis.dev CSV: real Binance USD-M quotes and trades (samples of ``../shared/data/tardis``),
and hand-made book files.

The ``incremental_book_L2`` and ``book_snapshot_3`` files below are HAND-MADE for these tests
(no real Tardis book file is at hand): a few rows each, in the columns docs.tardis.dev documents,
covering its rules: rows before the first snapshot, a snapshot, a message of several rows (one
``local_timestamp``), a level removed by amount 0, a second snapshot that resets the book, and
for snapshots a thinner book (empty levels) and an empty one. The book after each message is
worked out by hand in ``L2_BOOKS`` / ``SNAPSHOT_BOOKS``.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_samples import SAMPLES, books_after_messages, counts, tape

from engine.app.bookcheck import read_journal
from engine.app.ingest import tardis
from engine.app.ingest.merge import merge
from engine.app.ingest.session import Bad, Item
from engine.app.ingest.source import InputFile
from engine.events.market import F_FIRST, F_LAST, MARKET_RECORD
from engine.log import EmbeddedLog

QUOTES = SAMPLES / "tardis_binance-futures_quotes_BTCUSDT_2020-02-22_head200.csv.gz"
TRADES = SAMPLES / "tardis_binance-futures_trades_BTCUSDT_2020-02-22_head200.csv.gz"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tardis"

L2 = b"""exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
deribit,BTC-PERPETUAL,1000000,1000100,false,bid,99.5,1
deribit,BTC-PERPETUAL,1000000,1000200,true,bid,100.0,5
deribit,BTC-PERPETUAL,1000000,1000200,true,bid,99.5,3
deribit,BTC-PERPETUAL,1000000,1000200,true,ask,100.5,4
deribit,BTC-PERPETUAL,1000000,1000200,true,ask,101.0,2
deribit,BTC-PERPETUAL,1000300,1000400,false,bid,100.0,6
deribit,BTC-PERPETUAL,1000300,1000400,false,ask,100.5,0
deribit,BTC-PERPETUAL,1000500,1000600,false,ask,100.25,1
deribit,BTC-PERPETUAL,1000700,1000800,true,bid,99.0,7
deribit,BTC-PERPETUAL,1000700,1000800,true,ask,99.5,8
deribit,BTC-PERPETUAL,1000900,1001000,false,bid,99.25,2
"""
# The book after each message (prices x100, the scale the file shows): bids, asks best first.
L2_BOOKS = [
    ([(9950, 1)], []),  # an update before the first snapshot (Tardis: buffered, then reset)
    ([(10000, 5), (9950, 3)], [(10050, 4), (10100, 2)]),  # the snapshot replaces it
    ([(10000, 6), (9950, 3)], [(10100, 2)]),  # one message: a bid changes, an ask goes
    ([(10000, 6), (9950, 3)], [(10025, 1), (10100, 2)]),
    ([(9900, 7)], [(9950, 8)]),  # a second snapshot resets the book
    ([(9925, 2), (9900, 7)], [(9950, 8)]),
]
SNAPSHOT = (
    b"exchange,symbol,timestamp,local_timestamp,"
    + b",".join(
        b"%s[%d].%s" % (s, k, v)
        for k in range(3)
        for s in (b"asks", b"bids")
        for v in (b"price", b"amount")
    )
    + b"""
deribit,ETH-PERPETUAL,2000000,2000100,10.5,1,10.0,2,11.0,3,9.5,4,11.5,5,9.0,6
deribit,ETH-PERPETUAL,2000200,2000300,10.5,2,10.0,2,11.0,3,9.5,4,,,,
deribit,ETH-PERPETUAL,2000400,2000500,,,,,,,,,,,,
"""
)
SNAPSHOT_BOOKS = [
    ([(100, 2), (95, 4), (90, 6)], [(105, 1), (110, 3), (115, 5)]),
    ([(100, 2), (95, 4)], [(105, 2), (110, 3)]),  # the third level is empty on both sides
    ([], []),  # every level empty: the book is cleared
]


def _split(items: list[Item]) -> tuple[np.ndarray[Any, Any], list[Bad]]:
    arrays = [i for i in items if isinstance(i, np.ndarray)]
    records = np.concatenate(arrays) if arrays else np.zeros(0, MARKET_RECORD)
    return records, [i for i in items if isinstance(i, Bad)]


def _convert(path: Path, fast: bool = True, chunk: int = 8192) -> tuple[Any, list[Bad]]:
    found = tardis.inspect(path)
    spec = tardis.instrument(found.exchange, found.symbol, None, None, [found])
    conv = tardis.TardisConverter(found, spec, found.exchange, chunk=chunk, fast=fast)
    lines = InputFile(path).lines()
    return _split(list(conv.convert(lines if fast else list(lines))))


def _books(path: Path) -> list[tuple[list[Any], list[Any]]]:
    """The book after each message of ``path``, ingested as session ``s``."""
    data = path.parent / "data"
    code, out = tape(data, "ingest", "tardis", str(path), "--session", "s", "--quiet")
    assert code == 0, out
    return books_after_messages(data, "s")


@pytest.mark.parametrize("path", [QUOTES, TRADES])
@pytest.mark.parametrize("chunk", [8192, 7])
def test_fast_path_equals_row_by_row(path: Path, chunk: int) -> None:
    fast, fast_bad = _convert(path, True, chunk)
    slow, slow_bad = _convert(path, False, chunk)
    assert fast.tobytes() == slow.tobytes()
    assert fast_bad == slow_bad == []
    assert len(fast) == 200


def test_real_rows_convert_exactly() -> None:
    quotes, _ = _convert(QUOTES)
    q = quotes[0]  # 1582329601096000,1582329603502092,0.84,9682,9681.92,0.67
    assert (int(q["ts_event"]), int(q["ts_recv"])) == (1582329601096000000, 1582329603502092000)
    assert (int(q["price"]), int(q["size"]), int(q["price2"]), int(q["size2"])) == (
        968192,
        670,
        968200,
        840,
    )
    trades, _ = _convert(TRADES)
    t = trades[0]  # 42377944,buy,9682,0.132
    assert (int(t["side"]), int(t["price"]), int(t["size"]), int(t["id"])) == (
        1,
        968200,
        132,
        42377944,
    )


def test_quotes_and_trades_merge_and_book_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "tardis", str(QUOTES), str(TRADES), "--session", "t")
    assert code == 0, out
    journal = read_journal(EmbeddedLog(data), "t")
    assert len(journal.records) == 400
    recv = journal.records["ts_recv"]
    assert (np.diff(recv) >= 0).all()  # one order: by the recorder's local_timestamp
    assert journal.opened.instrument.venue == "BINANCE-USDM"
    code, out = tape(data, "book-check", "t")
    assert code == 0, out
    assert counts(out)["mismatched"] == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/tardis is not present")
def test_whole_shared_files(tmp_path: Path) -> None:
    files = sorted(str(p) for p in SHARED.glob("*.csv"))
    code, out = tape(tmp_path, "ingest", "tardis", *files, "--session", "t", "--quiet")
    assert code == 0, out
    assert counts(out)["market records"] == 19_998  # 9,999 quotes + 9,999 trades
    code, out = tape(tmp_path, "book-check", "t")
    assert code == 0, out
    assert counts(out)["compared"] == counts(out)["matched"] == 9_999


@pytest.mark.parametrize("form", ["plain", "gzip", "zstd", "crlf"])
def test_incremental_l2_rebuilds_as_worked_out(tmp_path: Path, form: str) -> None:
    raw = L2.replace(b"\n", b"\r\n") if form == "crlf" else L2
    path = tmp_path / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    if form == "gzip":
        raw = gzip.compress(raw)
    elif form == "zstd":
        raw = zstandard.ZstdCompressor().compress(raw)
    path.write_bytes(raw)
    assert _books(path) == L2_BOOKS
    journal = read_journal(EmbeddedLog(tmp_path / "data"), "s")
    flags = journal.records["flags"].tolist()
    assert [i for i, f in enumerate(flags) if f & F_FIRST] == [1, 8]  # each snapshot starts
    assert [i for i, f in enumerate(flags) if f & F_LAST] == [0, 4, 6, 7, 9, 10]


def test_book_snapshots_rebuild_as_worked_out(tmp_path: Path) -> None:
    path = tmp_path / "deribit_book_snapshot_3_ETH-PERPETUAL.csv"
    path.write_bytes(SNAPSHOT)
    assert _books(path) == SNAPSHOT_BOOKS
    code, out = tape(tmp_path / "data", "book-check", "s")
    assert code == 0, out


def test_hand_made_files_book_check_clean(tmp_path: Path) -> None:
    path = tmp_path / "l2.csv"
    path.write_bytes(L2)
    data = tmp_path / "data"
    assert tape(data, "ingest", "tardis", str(path), "--session", "l2", "--quiet")[0] == 0
    code, out = tape(data, "book-check", "l2")
    assert code == 0, out
    assert "independent rebuild" in out


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda rows: [*rows[:3], rows[2], *rows[3:]], "duplicate_line"),
        (
            lambda rows: [*rows[:3], rows[3].replace(b",1000200,", b",1000150,"), *rows[4:]],
            "time_backwards",
        ),
        (
            lambda rows: [
                *rows[:3],
                rows[3].replace(b"BTC-PERPETUAL", b"ETH-PERPETUAL"),
                *rows[4:],
            ],
            "symbol_mismatch",
        ),
        (lambda rows: [*rows[:3], rows[3].replace(b",bid,", b",buy,"), *rows[4:]], "bad_field"),
        (
            lambda rows: [*rows[:3], rows[3].replace(b",99.5,", b",99.5.1,"), *rows[4:]],
            "not_numeric",
        ),
        (lambda rows: [*rows[:3], rows[3].replace(b",3\n", b",3,7\n"), *rows[4:]], "bad_columns"),
    ],
)
def test_damaged_rows_are_quarantined(tmp_path: Path, edit: Any, reason: str) -> None:
    rows = L2.splitlines(keepends=True)
    path = tmp_path / "l2.csv"
    path.write_bytes(b"".join(edit(rows)))
    for fast in (True, False):
        _, bad = _convert(path, fast)
        assert [(b.reason, b.line) for b in bad] == [(reason, 4)]


def test_a_file_without_its_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_bytes(b"".join(gzip.decompress(QUOTES.read_bytes()).splitlines(keepends=True)[1:]))
    code, out = tape(tmp_path / "data", "ingest", "tardis", str(path), "--session", "q")
    assert code == 2
    assert "no header line" in out


def test_files_of_two_instruments_are_refused(tmp_path: Path) -> None:
    l2, snap = tmp_path / "l2.csv", tmp_path / "snap.csv"
    l2.write_bytes(L2)
    snap.write_bytes(SNAPSHOT)
    code, out = tape(tmp_path / "data", "ingest", "tardis", str(l2), str(snap), "--session", "x")
    assert code == 2
    assert "one instrument" in out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 30), min_size=0, max_size=25).map(sorted), min_size=1, max_size=4
    ),
    st.integers(1, 5),
)
def test_merge_orders_by_receive_time_then_input(times: list[list[int]], piece: int) -> None:
    def stream(k: int, ts: list[int]) -> Any:
        records = np.zeros(len(ts), MARKET_RECORD)
        records["ts_recv"], records["aux"], records["id"] = ts, k, range(len(ts))
        for start in range(0, len(ts), piece):
            yield records[start : start + piece]

    got, _ = _split(list(merge([stream(k, ts) for k, ts in enumerate(times)])))
    want = sorted((t, k, i) for k, ts in enumerate(times) for i, t in enumerate(ts))
    assert (
        list(zip(got["ts_recv"].tolist(), got["aux"].tolist(), got["id"].tolist(), strict=True))
        == want
    )
