"""LOBSTER at any depth, with or without its orderbook file: ``tape ingest lobster`` then
``tape book-check`` with 0 mismatches.

The 1- and 5-level files are cut from the real 10-level pairs (the committed AAPL sample, and
the GOOG day in ``../shared/data`` when present) as LOBSTER cuts its files; the 20- and 50-level
pairs are hand-made by a simulated order flow (``tests/lobster_depth.py`` says how), because no
deeper real file is at hand.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from ingest_samples import LOBSTER_BOOKS, LOBSTER_MESSAGES, counts, sample_lines, tape
from lobster_depth import cut_depth, simulate

from engine.app.bookcheck import lobster as lobster_check
from engine.app.bookcheck import read_journal
from engine.events.book import BOOK_BAND
from engine.log import EmbeddedLog

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"


def _write(
    tmp: Path, symbol: str, depth: int, messages: list[bytes], books: list[bytes]
) -> list[str]:
    """The pair under LOBSTER's own file names (which give symbol, day and depth)."""
    stem = f"{symbol}_2012-06-21_34200000_57600000_{{}}_{depth}.csv"
    m, b = tmp / stem.format("message"), tmp / stem.format("orderbook")
    m.write_bytes(b"\n".join(messages) + b"\n")
    b.write_bytes(b"\n".join(books) + b"\n")
    return [str(m), str(b)]


def _ingest_and_check(data: Path, session: str, files: list[str]) -> dict[str, int]:
    code, out = tape(data, "ingest", "lobster", *files, "--session", session, "--quiet")
    assert code == 0, out
    code, out = tape(data, "book-check", session)
    assert code == 0, out
    found = counts(out)
    assert found["mismatched"] == 0, out
    assert found["compared"] == found["matched"] > 0, out
    return found


@pytest.mark.parametrize("depth", [1, 5])
def test_fewer_levels_book_check_clean(tmp_path: Path, depth: int) -> None:
    messages, books = cut_depth(sample_lines(LOBSTER_MESSAGES), sample_lines(LOBSTER_BOOKS), depth)
    files = _write(tmp_path, "AAPL", depth, messages, books)
    counts = _ingest_and_check(tmp_path / "data", "aapl", files)
    assert counts["compared"] == len(books)
    # The book keeps the file's depth because the journal says it: with the NASDAQ default of
    # ten levels instead (what the issue found), the same rows do not match.
    journal = read_journal(EmbeddedLog(tmp_path / "data"), "aapl")
    assert [e.depth for e in journal.described] == [depth]
    journal.described.clear()
    report = lobster_check.check(EmbeddedLog(tmp_path / "data"), journal, "aapl")
    assert report.mismatched > 0


@pytest.mark.parametrize("depth", [20, 50])
def test_deeper_hand_made_files_book_check_clean(tmp_path: Path, depth: int) -> None:
    messages, books = cut_depth(*simulate(1500, seed=depth), depth)
    files = _write(tmp_path, "SIM", depth, messages, books)
    counts = _ingest_and_check(tmp_path / "data", "sim", files)
    assert counts["compared"] == len(books)
    assert counts["resynced"] > 0  # levels entered the window from below and were checked
    oracle = lobster_check._oracle(EmbeddedLog(tmp_path / "data"), "sim")
    bands = int((oracle["type_id"] == BOOK_BAND.type_id).sum())
    assert bands == (depth // 10 - 1) * len(books) == len(oracle) - len(books)


def test_message_file_alone(tmp_path: Path) -> None:
    m = tmp_path / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    m.write_bytes(gzip.decompress(LOBSTER_MESSAGES.read_bytes()))
    code, out = tape(tmp_path / "data", "ingest", "lobster", str(m), "--session", "m")
    assert code == 0, out
    assert "no orderbook file" in out
    assert "orders that rested before" in out
    code, out = tape(tmp_path / "data", "book-check", "m")
    assert code == 0, out
    found = counts(out)
    assert found["compared"] == found["matched"] == 999
    assert "counted: cancel/delete/execute/modify of an order not in the book" in out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/lobster is not present")
@pytest.mark.parametrize("depth", [1, 5])
def test_goog_day_at_fewer_levels(tmp_path: Path, depth: int) -> None:
    day = "GOOG_2012-06-21_34200000_57600000_{}_10.csv.gz"
    messages = gzip.decompress((SHARED / day.format("message")).read_bytes()).splitlines()
    books = gzip.decompress((SHARED / day.format("orderbook")).read_bytes()).splitlines()
    cut_m, cut_b = cut_depth(messages, books, depth)
    files = _write(tmp_path, "GOOG", depth, cut_m, cut_b)
    counts = _ingest_and_check(tmp_path / "data", "goog", files)
    assert counts["compared"] == len(cut_b) > 40_000
