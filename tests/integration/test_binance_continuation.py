"""Sessions that continue: a Binance recording without a depth snapshot is told so, and
``--after SESSION`` starts it from the final book of the recording it continues.

The two "days" are the committed spot sample cut in two after line 1,500 (the REST snapshot is
line 8): the second half has no snapshot, as the next file of a recorder that fetched one at
start-up would not.
"""

from __future__ import annotations

from pathlib import Path

from ingest_samples import BINANCE_SPOT, counts, sample_lines, tape, write_gz

from engine.app.bookcheck import read_journal
from engine.events.market import BOOK_SNAPSHOT, F_GAP
from engine.log import EmbeddedLog

CUT = 1500


def _days(tmp: Path) -> tuple[Path, Path]:
    lines = sample_lines(BINANCE_SPOT)
    return write_gz(tmp / "day1.gz", lines[:CUT]), write_gz(tmp / "day2.gz", lines[CUT:])


def test_a_recording_without_a_snapshot_is_told_so(tmp_path: Path) -> None:
    _, day2 = _days(tmp_path)
    code, out = tape(tmp_path / "data", "ingest", "binance", str(day2), "--session", "d2")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "has no depth snapshot: the book cannot be rebuilt until one arrives" in flat
    assert "--after SESSION" in flat


def test_after_starts_from_the_final_book_and_checks_continuity(tmp_path: Path) -> None:
    day1, day2 = _days(tmp_path)
    data = tmp_path / "data"
    assert tape(data, "ingest", "binance", str(day1), "--session", "d1", "--quiet")[0] == 0
    code, out = tape(data, "ingest", "binance", str(day2), "--session", "d2", "--after", "d1")
    assert code == 0, out
    assert "continue it without a gap" in " ".join(out.split())
    journal = read_journal(EmbeddedLog(data), "d2")
    assert journal.records["type_id"][0] == BOOK_SNAPSHOT.type_id  # day 1's final book
    code, out = tape(data, "book-check", "d2")
    assert code == 0, out
    continued = counts(out)
    # The same messages, checked in the whole recording: the same count, all matching.
    assert tape(data, "ingest", "binance", str(BINANCE_SPOT), "--session", "all", "--quiet")[0] == 0
    whole = counts(tape(data, "book-check", "all")[1])
    first = counts(tape(data, "book-check", "d1")[1])
    assert (
        continued["compared"] == continued["matched"] == whole["compared"] - first["compared"] > 100
    )


def test_a_break_in_the_update_ids_is_a_gap(tmp_path: Path) -> None:
    day1, _ = _days(tmp_path)
    lines = sample_lines(BINANCE_SPOT)[CUT:]
    first_depth = next(i for i, line in enumerate(lines) if b"@depth" in line)
    day2 = write_gz(tmp_path / "day2_gap.gz", lines[:first_depth] + lines[first_depth + 1 :])
    data = tmp_path / "data"
    assert tape(data, "ingest", "binance", str(day1), "--session", "d1", "--quiet")[0] == 0
    code, out = tape(data, "ingest", "binance", str(day2), "--session", "d2", "--after", "d1")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "do not all continue" in flat
    assert "1 depth sequence gap" in flat
    journal = read_journal(EmbeddedLog(data), "d2")
    assert journal.gaps == 1
    assert (journal.records["flags"] & F_GAP).any()


def test_after_needs_a_session_of_the_same_instrument(tmp_path: Path) -> None:
    _, day2 = _days(tmp_path)
    code, out = tape(
        tmp_path / "data", "ingest", "binance", str(day2), "--session", "d2", "--after", "nope"
    )
    assert code == 2
    assert "no completely ingested session" in out
