"""LOBSTER inputs: what the file names and the orderbook say, times past nine decimals, headers,
and where the importers' time zones come from."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from ingest_samples import LOBSTER_BOOKS, LOBSTER_MESSAGES, numbered, sample_lines

from engine.app.ingest import lobster
from engine.app.ingest.lobster_files import LobsterInputError, parse_name, resolve
from engine.app.ingest.lobster_rows import parse_seconds
from engine.app.ingest.session import Bad

ROOT = Path(__file__).resolve().parents[2]
GOOG = "GOOG_2012-06-21_34200000_57600000_{}_{}.csv"


def _pair(tmp: Path, name: str = GOOG, levels: int = 10, columns: int = 40) -> tuple[Path, Path]:
    m, b = tmp / name.format("message", levels), tmp / name.format("orderbook", levels)
    m.write_bytes(b"\n".join(sample_lines(LOBSTER_MESSAGES, 3)) + b"\n")
    rows = [b",".join(r.split(b",")[:columns]) for r in sample_lines(LOBSTER_BOOKS, 3)]
    b.write_bytes(b"\n".join(rows) + b"\n")
    return m, b


def test_names_give_symbol_day_and_depth(tmp_path: Path) -> None:
    m, b = _pair(tmp_path)
    got = resolve(m, b, None, None, None)
    assert (got.symbol, got.day, got.levels, got.notes) == ("GOOG", date(2012, 6, 21), 10, [])
    assert parse_name(Path("lobster_AAPL_2012-06-21_message_10.csv.gz")).symbol == "AAPL"  # type: ignore[union-attr]
    assert parse_name(Path("prices.csv")) is None


def test_flags_override_the_names_and_say_so(tmp_path: Path) -> None:
    m, b = _pair(tmp_path)
    got = resolve(m, b, "GOOGL", "2012-06-22", None)
    assert (got.symbol, got.day) == ("GOOGL", date(2012, 6, 22))
    assert any("--symbol GOOGL overrides GOOG" in n for n in got.notes)


@pytest.mark.parametrize(
    ("make", "flags", "says"),
    [
        # the name says 5 levels, the orderbook has 40 columns (10 levels)
        (lambda t: _pair(t, levels=5), (None, None, None), "does not agree"),
        # --levels contradicts the orderbook
        (lambda t: _pair(t), (None, None, 1), "--levels says 1"),
        # the two names are not a pair
        (
            lambda t: (_pair(t)[0], _pair(t, GOOG.replace("GOOG", "AAPL"))[1]),
            (None, None, None),
            "not a pair",
        ),
        # the orderbook file given first
        (lambda t: tuple(reversed(_pair(t))), (None, None, None), "give the message file"),
    ],
)
def test_conflicts_are_clear_errors(tmp_path: Path, make: object, flags: tuple, says: str) -> None:  # type: ignore[type-arg]
    m, b = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(LobsterInputError, match=says):
        resolve(m, b, *flags)


def test_a_message_file_alone_needs_its_depth_from_the_name_or_levels(tmp_path: Path) -> None:
    m, _ = _pair(tmp_path)
    assert resolve(m, None, None, None, None).levels == 10
    plain = tmp_path / "messages.csv"
    plain.write_bytes(m.read_bytes())
    with pytest.raises(LobsterInputError, match="pass --symbol"):
        resolve(plain, None, None, "2012-06-21", 5)
    with pytest.raises(LobsterInputError, match="pass --levels"):
        resolve(plain, None, "X", "2012-06-21", None)
    assert resolve(plain, None, "X", "2012-06-21", 5).levels == 5


@pytest.mark.parametrize(
    ("text", "ns", "rounded"),
    [
        ("43002.632812672004", 43002_632812672, True),  # the float artifact of the issue
        ("43002.6328126725", 43002_632812672, True),  # a tie rounds to even
        ("43002.6328126735", 43002_632812674, True),
        ("43002.63281267251", 43002_632812673, True),  # past the tie: up
        ("34200.004241176000", 34200_004241176, False),  # zeros are not rounding
        ("34200.004241176", 34200_004241176, False),
    ],
)
def test_times_past_nine_decimals_round_to_the_nanosecond(
    text: str, ns: int, rounded: bool
) -> None:
    assert parse_seconds(text) == (ns, rounded)


def test_a_rounded_time_is_converted_and_counted_not_quarantined() -> None:
    messages, books = sample_lines(LOBSTER_MESSAGES, 40), sample_lines(LOBSTER_BOOKS, 40)
    # A real deletion (row 9) with its time printed as a float would print it: 12 decimals.
    fields = messages[8].split(b",")
    assert fields[1] == b"3"
    messages[8] = b",".join([fields[0] + b"004", *fields[1:]])
    conv = lobster.LobsterConverter(date(2012, 6, 21), "m", "b")
    items = list(conv.convert(numbered(messages), numbered(books)))
    assert not [i for i in items if isinstance(i, Bad)]
    assert conv.rounded == 1
    records = np.concatenate([i for i in items if isinstance(i, np.ndarray)])
    deletion = records[records["type_id"] == 4][0]
    assert deletion["ts_event"] == lobster.midnight_ns(date(2012, 6, 21)) + int(
        fields[0].replace(b".", b"")
    )


def test_a_header_line_is_skipped_with_its_reason() -> None:
    header = b"Time,Type,OrderID,Size,Price,Direction"
    messages = [header, *sample_lines(LOBSTER_MESSAGES, 20)]
    books = [b",".join(b"col%d" % k for k in range(40)), *sample_lines(LOBSTER_BOOKS, 20)]
    conv = lobster.LobsterConverter(date(2012, 6, 21), "m", "b")
    items = list(conv.convert(numbered(messages), numbered(books)))
    bad = [i for i in items if isinstance(i, Bad)]
    assert [(b.reason, b.line) for b in bad] == [("header", 1), ("header", 1)]
    assert sum(len(i) for i in items if isinstance(i, np.ndarray)) > 20


def test_importers_read_time_zones_from_the_tzdata_package(tmp_path: Path) -> None:
    # A system zone database that gets New York wrong (it holds UTC under that name): an
    # importer that asked the system (zoneinfo's TZPATH) would convert LOBSTER times by it.
    zones = tmp_path / "zoneinfo"
    (zones / "America").mkdir(parents=True)
    (zones / "America" / "New_York").write_bytes(_tzif_utc())
    code = (
        "from datetime import date; from engine.app.ingest import lobster, b3;"
        "print(lobster.midnight_ns(date(2012, 6, 21)));"
        "print(b3.local_ns('2025-08-11 10:56:19.677', b3.load_zone(b3.TIME_ZONE)))"
    )
    env = {**os.environ, "PYTHONTZPATH": str(zones)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) == 1340251200_000000000  # 2012-06-21 00:00 EDT (UTC-4)
    assert int(out[1]) == 1754920579_677000000  # 2025-08-11 10:56:19.677 BRT (UTC-3)


def _tzif_utc() -> bytes:
    import tzdata

    return (Path(tzdata.__file__).parent / "zoneinfo" / "UTC").read_bytes()
