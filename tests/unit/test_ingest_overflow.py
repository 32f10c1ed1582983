"""Integers beyond their field and bytes that are not UTF-8: never a crash, same on both paths.

The compiled parsers decline what they cannot judge (values of more than 18 digits, a minus
sign on an id, non-ASCII bytes) and hand the line to the exact Python path, which quarantines
it. These tests feed damaged copies of real lines through files (so the compiled path runs) and
through plain lists of lines (the Python reference), and require the same items, no exception,
and items the journal can encode.
"""

from __future__ import annotations

import gzip
import io
import re
import tempfile
from datetime import date
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ingest_samples import (
    BINANCE_SPOT,
    BINANCE_USDM,
    LOBSTER_BOOKS,
    LOBSTER_MESSAGES,
    sample_lines,
)

from engine.app.ingest import binance, lobster
from engine.app.ingest.session import Bad, Item, Oracle
from engine.app.ingest.source import InputFile, Line, iter_lines
from engine.events.catalogue import encode
from engine.events.control import RecordQuarantined
from engine.events.market import MARKET_RECORD
from tests.factories import items_key

SPOT = sample_lines(BINANCE_SPOT, 200)
USDM = sample_lines(BINANCE_USDM, 200)
MESSAGES = sample_lines(LOBSTER_MESSAGES, 120)
BOOKS = sample_lines(LOBSTER_BOOKS, 120)
INT64_MAX = 2**63 - 1


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def _lines(data: bytes) -> list[Line]:
    return list(iter_lines(io.BytesIO(data)))


def _writable(items: list[Item]) -> None:
    """Everything the session driver would write encodes (no value beyond its field)."""
    for item in items:
        if isinstance(item, np.ndarray):
            assert item.dtype == MARKET_RECORD
        elif isinstance(item, Bad):
            encode(
                RecordQuarantined(
                    item.ts_recv,
                    item.ts_recv,
                    item.source,
                    item.line,
                    item.byte_offset,
                    item.raw,
                    item.reason,
                    item.detail,
                )
            )
        elif not isinstance(item, Oracle):
            assert isinstance(item, msgspec.Struct)
            encode(item)


def _binance_both(
    lines: list[bytes], market: str, chunk: int = 8192, block: int = 1 << 20
) -> tuple[list[Item], list[Item]]:
    data = _join(lines)
    spec = binance.instrument(market, "BTCUSDT")
    futures = market == "usdm"
    ref = binance.BinanceConverter(spec, futures, "f", chunk=chunk, fast=False)
    expected = list(ref.convert(_lines(data)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.gz"
        path.write_bytes(gzip.compress(data, mtime=0))
        conv = binance.BinanceConverter(spec, futures, "f", chunk=chunk, block=block)
        got = list(conv.convert(InputFile(path).lines()))
    return expected, got


def _lobster_both(
    messages: list[bytes], books: list[bytes], chunk: int = 8192, block: int = 1 << 20
) -> tuple[list[Item], list[Item]]:
    day = date(2012, 6, 21)
    m, b = _join(messages), _join(books)
    ref = lobster.LobsterConverter(day, "m", "b", chunk=chunk, fast=False)
    expected = list(ref.convert(_lines(m), _lines(b)))
    with tempfile.TemporaryDirectory() as tmp:
        mp, bp = Path(tmp) / "m.csv", Path(tmp) / "b.csv.gz"
        mp.write_bytes(m)
        bp.write_bytes(gzip.compress(b, mtime=0))
        conv = lobster.LobsterConverter(day, "m", "b", chunk=chunk, block=block)
        got = list(conv.convert(InputFile(mp).lines(), InputFile(bp).lines()))
    return expected, got


def _bad(items: list[Item]) -> list[tuple[str, int]]:
    return [(i.reason, i.line) for i in items if isinstance(i, Bad)]


def _edit(lines: list[bytes], marker: bytes, old: bytes, new: bytes) -> tuple[list[bytes], int]:
    out = list(lines)
    i = next(i for i, x in enumerate(out) if i > 8 and marker in x and old in x)
    out[i] = out[i].replace(old, new, 1)
    return out, i + 1


def _stamp(lines: list[bytes], stamp: bytes) -> tuple[list[bytes], int]:
    out = list(lines)
    i = next(i for i, x in enumerate(out) if i > 8 and b"@trade" in x)
    out[i] = stamp + out[i][19:]
    return out, i + 1


BINANCE_CASES = [
    ("spot", *_stamp(SPOT, b"99999999999999999999"), "out_of_range"),
    ("spot", *_stamp(SPOT, b"9223372036854775808"), "out_of_range"),
    ("spot", *_edit(SPOT, b"@trade", b'"t":', b'"t":-'), "out_of_range"),
    ("spot", *_edit(SPOT, b"@trade", b'"E":', b'"E":9'), "out_of_range"),
    ("spot", *_edit(SPOT, b"@trade", b'"s":"', b'"s":"\xff'), "bad_json"),
    ("spot", *_edit(SPOT, b"@trade", b'"M":true', b'"M":"\xff"'), "bad_json"),
    ("spot", *_edit(SPOT, b"@depth", b'"E":', b'"E":9'), "out_of_range"),
    ("spot", *_edit(SPOT, b"@depth", b'"U":', b'"U":-'), "out_of_range"),
    ("spot", *_edit(SPOT, b"@depth", b'"b":[["', b'"b":[["\xff'), "bad_json"),
    ("spot", *_edit(SPOT, b"@bookTicker", b'"u":', b'"u":99999999999'), "out_of_range"),
    ("usdm", *_stamp(USDM, b"99999999999999999999"), "out_of_range"),
    ("usdm", *_edit(USDM, b"@trade", b'"t":', b'"t":-'), "out_of_range"),
    ("usdm", *_edit(USDM, b"@trade", b'"E":', b'"E":9'), "out_of_range"),
    ("usdm", *_edit(USDM, b"@depth", b'"pu":', b'"pu":99999999999'), "out_of_range"),
    ("usdm", *_edit(USDM, b"@depth", b'"u":', b'"u":-'), "out_of_range"),
    ("usdm", *_edit(USDM, b"@bookTicker", b'"E":', b'"E":9'), "out_of_range"),
    ("usdm", *_edit(USDM, b"@bookTicker", b'"s":"', b'"s":"\xff'), "bad_json"),
]


@pytest.mark.parametrize(("market", "lines", "line", "reason"), BINANCE_CASES)
def test_binance_fast_and_reference_quarantine_alike(
    market: str, lines: list[bytes], line: int, reason: str
) -> None:
    for chunk, block in ((8192, 1 << 20), (5, 300)):
        expected, got = _binance_both(lines, market, chunk, block)
        assert items_key(got) == items_key(expected)
        assert _bad(got) == [(reason, line)]
        _writable(got)


def _message_column(k: int, value: bytes) -> tuple[list[bytes], list[bytes], str]:
    messages = list(MESSAGES)
    cols = messages[40].split(b",")
    cols[k] = value
    messages[40] = b",".join(cols)
    return messages, BOOKS, "m"


def _book_column(k: int, value: bytes) -> tuple[list[bytes], list[bytes], str]:
    books = list(BOOKS)
    cols = books[40].split(b",")
    cols[k] = value
    books[40] = b",".join(cols)
    return MESSAGES, books, "b"


BIG = b"12345678901234567890"


@pytest.mark.parametrize(
    ("messages", "books", "source"),
    [
        _message_column(0, BIG),
        _message_column(0, b"92233720368.5"),
        _message_column(2, b"99999999999999999999"),
        _message_column(3, BIG),
        _message_column(4, BIG),
        _message_column(3, b"9" * 5000),
        _book_column(0, BIG),
        _book_column(1, BIG),
        _book_column(2, b"-" + BIG),
        _book_column(39, BIG),
        _book_column(7, b"9" * 5000),
    ],
)
def test_lobster_fast_and_reference_quarantine_alike(
    messages: list[bytes], books: list[bytes], source: str
) -> None:
    for chunk, block in ((8192, 1 << 20), (7, 500)):
        expected, got = _lobster_both(messages, books, chunk, block)
        assert items_key(got) == items_key(expected)
        assert [(i.reason, i.line, i.source) for i in got if isinstance(i, Bad)] == [
            ("out_of_range", 41, source)
        ]
        _writable(got)


def test_lobster_order_id_in_the_unsigned_slot_is_kept_on_both_paths() -> None:
    messages, books, _ = _message_column(2, str(2**64 - 1).encode())
    expected, got = _lobster_both(messages, books)
    assert items_key(got) == items_key(expected)
    assert _bad(got) == []


# -- any integer in any integer field --------------------------------------------------------

_EDGES = [
    0,
    -1,
    INT64_MAX,
    INT64_MAX + 1,
    -INT64_MAX - 1,
    -INT64_MAX - 2,
    2**64 - 1,
    2**64,
    INT64_MAX // 1_000_000,
    INT64_MAX // 1_000_000 + 1,
    10**18 - 1,
    10**18,
]
INTEGERS = st.one_of(
    st.sampled_from(_EDGES), st.integers(-(2**70), 2**70), st.integers(-(10**4), 10**4)
)
# fields of the JSON messages whose value is an integer, and the lines that carry them
_INT_FIELDS = (b"E", b"T", b"t", b"U", b"u", b"pu", b"lastUpdateId")


def _set_int(line: bytes, name: bytes, value: int) -> bytes:
    pattern = rb'"' + name + rb'":-?\d+'
    return re.sub(pattern, b'"' + name + b'":' + str(value).encode(), line, count=1)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(["spot", "usdm"]),
    st.integers(0, 70),
    st.sampled_from([*_INT_FIELDS, b"stamp"]),
    INTEGERS,
)
@example("spot", 9, b"stamp", 2**64)
@example("spot", 9, b"t", -1)
@example("usdm", 9, b"E", INT64_MAX // 1_000_000 + 1)
@example("usdm", 54, b"lastUpdateId", 2**63)
@example("usdm", 11, b"pu", 2**64)
def test_binance_any_integer_never_crashes(market: str, at: int, name: bytes, value: int) -> None:
    lines = list((SPOT if market == "spot" else USDM)[:80])
    if name == b"stamp":
        lines[at] = str(abs(value)).encode() + lines[at][19:]
    else:
        lines[at] = _set_int(lines[at], name, value)
    expected, got = _binance_both(lines, market)
    assert items_key(got) == items_key(expected)
    _writable(got)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(0, 60), st.sampled_from(["m", "b"]), st.integers(0, 39), INTEGERS, st.booleans())
@example(0, "b", 3, 2**63 - 5, False)  # the first row: undoing message 1 near the limit
@example(30, "m", 0, 2**62, True)
def test_lobster_any_integer_never_crashes(
    row: int, which: str, column: int, value: int, decimals: bool
) -> None:
    messages, books = list(MESSAGES[:80]), list(BOOKS[:80])
    target = messages if which == "m" else books
    cols = target[row].split(b",")
    k = column % len(cols)
    text = str(value)
    if decimals and k == 0 and which == "m":  # the time column has 9 decimals
        text = f"{text}.{abs(value) % 10**9:09d}"
    cols[k] = text.encode()
    target[row] = b",".join(cols)
    expected, got = _lobster_both(messages, books)
    assert items_key(got) == items_key(expected)
    _writable(got)
