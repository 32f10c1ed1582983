"""The compiled fast paths of the importers give exactly what the line-by-line paths give.

The reference is the exact Python path (``parse_scaled`` for a decimal; ``fast=False`` or a
plain list of lines for a converter). The fast path may decline ("not sure") and hand a value or
line to the reference, but whatever it does convert must be identical, and what the reference
refuses must be refused and quarantined exactly as before.
"""

from __future__ import annotations

import gzip
import io
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

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
from engine.app.ingest.decimal import DecimalError, parse_scaled
from engine.app.ingest.fastparse import MAX_DIGITS, parse_scaled_fast
from engine.app.ingest.session import Item, Oracle
from engine.app.ingest.source import InputFile, Line, iter_lines
from tests.factories import items_key

# -- decimals ------------------------------------------------------------------------------------

DIGITS = "0123456789"
TEXT_CHARS = DIGITS + ".-+e _x\u0661\u00b2"  # with an Arabic-Indic one and a superscript two


def _significant_whole(text: str) -> int:
    whole = text.lstrip("-").partition(".")[0]
    return len(whole.lstrip("0"))


def _reference(text: str, scale: int) -> int | None:
    try:
        return parse_scaled(text, scale)
    except DecimalError:
        return None


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """Mostly well-formed decimals, with the edges: signs, leading zeros, no fraction, long
    fractions, zeros past the scale, huge values, stray characters."""
    sign = draw(st.sampled_from(["", "", "", "-", "+", "--"]))
    zeros = "0" * draw(st.integers(0, 3))
    whole = draw(st.text(DIGITS, max_size=draw(st.sampled_from([3, 12, 25]))))
    dot = draw(st.sampled_from(["", ".", ".", "."]))
    frac = draw(st.text(DIGITS, max_size=draw(st.sampled_from([2, 9, 22]))))
    trailing = "0" * draw(st.integers(0, 4)) if dot else ""
    junk = draw(st.sampled_from(["", "", "", "", " ", "x", "e5", ".1", "\u0661"]))
    return sign + zeros + whole + dot + frac + trailing + junk


def _check_decimal(text: str, scale: int) -> None:
    fast = parse_scaled_fast(text.encode(), scale)
    ref = _reference(text, scale)
    if ref is None:
        assert fast is None, f"{text!r} is refused by parse_scaled but the fast path took it"
    elif _significant_whole(text) + scale <= MAX_DIGITS:
        assert fast == ref, f"{text!r} at scale {scale}: fast {fast}, reference {ref}"
    else:  # possibly outside int64: the fast path must leave it to the exact path
        assert fast is None


@settings(max_examples=3000)
@given(decimal_texts(), st.integers(0, MAX_DIGITS))
@example("00061496.50", 2)  # leading zeros
@example("61496", 2)  # no fractional part
@example(".5", 1)
@example("1.", 2)  # a dot without decimals: refused
@example("61496.501", 2)  # more decimals than the scale: refused (precision)
@example("61496.50000000", 2)  # more decimals than the scale, all zeros: accepted
@example("-0.00", 8)  # minus zero is zero
@example("-", 0)
@example("", 3)
@example("999999999999999999", 0)  # 18 digits: the fast path's limit
@example("9223372036854775807", 0)  # int64 max: left to the exact path
@example("123456789012345678901234.0", 2)  # huge
@example("1e5", 0)
@example("1_000", 0)
@example("\u0661", 0)
def test_fast_decimal_matches_parse_scaled(text: str, scale: int) -> None:
    _check_decimal(text, scale)


@settings(max_examples=1000)
@given(st.text(TEXT_CHARS, max_size=30), st.integers(0, MAX_DIGITS))
def test_fast_decimal_matches_parse_scaled_on_any_text(text: str, scale: int) -> None:
    _check_decimal(text, scale)


@given(st.integers(-(10**18) + 1, 10**18 - 1), st.integers(0, 9))
def test_fast_decimal_takes_every_plain_value(value: int, scale: int) -> None:
    whole, frac = divmod(abs(value), 10**scale)
    text = ("-" if value < 0 else "") + (f"{whole}.{frac:0{scale}d}" if scale else str(whole))
    if len(str(whole).lstrip("0")) + scale <= MAX_DIGITS:
        assert parse_scaled_fast(text.encode(), scale) == value


# -- converters ----------------------------------------------------------------------------------


def _collect(items: Iterator[Item]) -> list[Item | str]:
    """All items, and in place of the rest the error that stopped them, if any.

    Some inputs make the importers raise (a value too large for its field); the fast path
    must raise the same error after the same items.
    """
    out: list[Item | str] = []
    try:
        out.extend(items)
    except Exception as exc:
        out.append(f"{type(exc).__name__}: {exc}")
    return out


def _lines(data: bytes) -> list[Line]:
    """``data`` cut into lines by ``iter_lines`` (the reference path's input)."""
    return list(iter_lines(io.BytesIO(data)))


def _write(directory: Path, name: str, data: bytes, gz: bool) -> Path:
    path = directory / name
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _binance_both(
    data: bytes, market: str = "spot", chunk: int = 8192, block: int = 1 << 20, gz: bool = True
) -> tuple[list[Item | str], list[Item | str]]:
    spec = binance.instrument(market, "BTCUSDT")
    futures = market == "usdm"
    ref = binance.BinanceConverter(spec, futures, "f", chunk=chunk, fast=False)
    expected = _collect(ref.convert(_lines(data)))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "f.gz", data, gz)
        inp = InputFile(path)
        conv = binance.BinanceConverter(spec, futures, "f", chunk=chunk, block=block)
        got = _collect(conv.convert(inp.lines()))
        if not got or not isinstance(got[-1], str):
            assert inp.lines_read == len(_lines(data))
    assert conv.gaps == ref.gaps
    return expected, got


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


SPOT = sample_lines(BINANCE_SPOT, 400)
USDM = sample_lines(BINANCE_USDM, 300)


def _replace_first(lines: list[bytes], marker: bytes, old: bytes, new: bytes) -> list[bytes]:
    out = list(lines)
    i = next(i for i, line in enumerate(out) if marker in line and old in line)
    out[i] = out[i].replace(old, new, 1)
    return out


@pytest.mark.parametrize(
    ("market", "chunk", "block"),
    [("spot", 8192, 1 << 20), ("usdm", 8192, 1 << 20), ("spot", 7, 333), ("usdm", 50, 4096)],
)
def test_binance_fast_equals_reference_on_samples(market: str, chunk: int, block: int) -> None:
    lines = SPOT if market == "spot" else USDM
    expected, got = _binance_both(_join(lines), market, chunk, block)
    assert items_key(got) == items_key(expected)
    assert sum(len(i) for i in got if isinstance(i, np.ndarray)) > 1000


@pytest.mark.parametrize(
    "lines",
    [
        _replace_first(SPOT, b"@trade", b'"p":"', b'"p":"-'),  # negative price
        _replace_first(SPOT, b"@trade", b'"q":"', b'"q":"00'),  # leading zeros
        _replace_first(SPOT, b"@bookTicker", b'"B":"', b'"B":"1'),  # fine
        _replace_first(SPOT, b"@bookTicker", b'"a":"', b'"a":"9999999999999'),  # out of range
        _replace_first(SPOT, b"@depth", b'"b":[["', b'"b":[["-'),  # negative level price
        _replace_first(SPOT, b"@depth", b'"b":[["', b'"b":[["\\u0036'),  # escaped digit
        _replace_first(SPOT, b"@depth", b'"U":', b'"U":1'),  # a sequence gap
        _replace_first(SPOT, b"@depth", b'"e":"depthUpdate",', b""),  # missing field
        _replace_first(SPOT, b"@trade", b'"m":', b'"m":true,"m":'),  # duplicate key
        _replace_first(SPOT, b"@trade", b'{"stream"', b' {\t"stream" '),  # whitespace
        [line + b"\r" for line in SPOT],  # CRLF
        [*SPOT[:50], b"", b"garbage", SPOT[60].partition(b" ")[2], *SPOT[50:]],
        SPOT[:100] + SPOT[90:200],  # time going backwards
        _replace_first(USDM, b"@depth", b'"pu":', b'"pu":null,"x":'),
    ],
)
def test_binance_fast_equals_reference_on_damage(lines: list[bytes]) -> None:
    market = "usdm" if lines[0].startswith(USDM[0][:20]) else "spot"
    for chunk, block in ((8192, 1 << 20), (5, 200)):
        expected, got = _binance_both(_join(lines), market, chunk, block)
        assert items_key(got) == items_key(expected)


def test_binance_last_line_without_newline() -> None:
    data = _join(SPOT[:30])[:-1]
    expected, got = _binance_both(data, gz=False)
    assert items_key(got) == items_key(expected)


def _set_decimals(line: bytes, texts: list[str]) -> bytes:
    """``line`` (a trade or bookTicker) with its decimal strings replaced, in order."""
    parts = line.split(b'":"')
    k = 0
    for i in range(1, len(parts)):
        key_end = parts[i - 1].rsplit(b'"', 1)[-1]
        if key_end in (b"p", b"q", b"b", b"B", b"a", b"A") and k < len(texts):
            rest = parts[i].split(b'"', 1)[1]
            parts[i] = texts[k].encode() + b'"' + rest
            k += 1
    return b'":"'.join(parts)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(decimal_texts(), min_size=4, max_size=4), st.integers(0, 30))
def test_binance_fast_equals_reference_on_generated_decimals(texts: list[str], at: int) -> None:
    lines = list(SPOT[:40])
    quotes = [i for i, line in enumerate(lines) if b"@bookTicker" in line or b"@trade" in line]
    i = quotes[at % len(quotes)]
    lines[i] = _set_decimals(lines[i], texts)
    expected, got = _binance_both(_join(lines))
    assert items_key(got) == items_key(expected)


# -- LOBSTER -------------------------------------------------------------------------------------

MESSAGES = sample_lines(LOBSTER_MESSAGES, 300)
BOOKS = sample_lines(LOBSTER_BOOKS, 300)


def _lobster_both(
    messages: bytes, books: bytes, chunk: int = 8192, block: int = 1 << 20, levels: int = 10
) -> tuple[list[Item | str], list[Item | str]]:
    day = date(2012, 6, 21)
    ref = lobster.LobsterConverter(day, "m", "b", levels, chunk=chunk, fast=False)
    expected = _collect(ref.convert(_lines(messages), _lines(books)))
    with tempfile.TemporaryDirectory() as tmp:
        m = _write(Path(tmp), "m.csv", messages, gz=False)
        b = _write(Path(tmp), "b.csv.gz", books, gz=True)
        files = [InputFile(m), InputFile(b)]
        conv = lobster.LobsterConverter(day, "m", "b", levels, chunk=chunk, block=block)
        got = _collect(conv.convert(files[0].lines(), files[1].lines()))
        if not got or not isinstance(got[-1], str):
            assert files[0].lines_read == len(_lines(messages))
            assert files[1].lines_read == len(_lines(books))
    return expected, got


@pytest.mark.parametrize(("chunk", "block"), [(8192, 1 << 20), (7, 100), (64, 1000)])
def test_lobster_fast_equals_reference_on_samples(chunk: int, block: int) -> None:
    expected, got = _lobster_both(_join(MESSAGES), _join(BOOKS), chunk, block)
    assert items_key(got) == items_key(expected)
    assert sum(len(i.tops) for i in got if isinstance(i, Oracle)) == len(BOOKS)


def _with(lines: list[bytes], edits: dict[int, bytes]) -> list[bytes]:
    out = list(lines)
    for i, row in edits.items():
        out[i] = row
    return out


@pytest.mark.parametrize(
    ("messages", "books"),
    [
        (_with(MESSAGES, {0: b"x"}), BOOKS),  # no first message: the book has no snapshot
        (_with(MESSAGES, {10: b"34200.01,1,1,1,5853300"}), BOOKS),
        (_with(MESSAGES, {10: b"34200.01,9,1,5,5853300,1"}), BOOKS),
        (_with(MESSAGES, {10: b"34100.0,1,1,5,5853300,1"}), BOOKS),  # time backwards
        (_with(MESSAGES, {10: b"34200.5,7,0,0,-1,-1", 20: b"34200.9,7,0,0,1,1"}), BOOKS),
        (_with(MESSAGES, {10: b"034200.10,02,016113575,018,05853300.00,-1"}), BOOKS),
        (
            _with(MESSAGES, {10: b"34200.1,5,0,100,5853300,1", 11: b"34200.1,6,0,5,5853300,1"}),
            BOOKS,
        ),
        (MESSAGES, _with(BOOKS, {5: b"9999999999,0," + b",".join(BOOKS[5].split(b",")[2:])})),
        (MESSAGES, _with(BOOKS, {6: BOOKS[6].replace(b",", b",-", 1)})),  # negative size
        (MESSAGES, _with(BOOKS, {7: BOOKS[7] + b","})),
        (MESSAGES, _with(BOOKS, {8: BOOKS[8].replace(b",", b".5,", 1)})),
        (MESSAGES, _with(BOOKS, {9: b"1" * 19 + BOOKS[9][BOOKS[9].index(b",") :]})),
        ([m + b"\r" for m in MESSAGES], [b + b"\r\r" for b in BOOKS]),
        (MESSAGES[:-3], BOOKS),  # row counts differ
        (MESSAGES, BOOKS[:-3]),
    ],
)
def test_lobster_fast_equals_reference_on_damage(messages: list[bytes], books: list[bytes]) -> None:
    for chunk, block in ((8192, 1 << 20), (5, 150)):
        expected, got = _lobster_both(_join(messages), _join(books), chunk, block)
        assert items_key(got) == items_key(expected)


def test_lobster_fewer_levels_and_no_final_newline() -> None:
    books = [b",".join(row.split(b",")[:12]) for row in BOOKS]
    expected, got = _lobster_both(_join(MESSAGES)[:-1], _join(books)[:-1], levels=3)
    assert items_key(got) == items_key(expected)


@st.composite
def message_rows(draw: st.DrawFn) -> bytes:
    """A LOBSTER message row with generated columns (mostly valid ones)."""
    seconds = draw(st.one_of(st.just("34200.5"), decimal_texts()))
    kind = draw(st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "9", "01", "1.0", "1.5"]))
    order_id = draw(st.one_of(st.integers(0, 10**19).map(str), decimal_texts()))
    size = draw(st.one_of(st.integers(-5, 10**6).map(str), decimal_texts()))
    price = draw(st.one_of(st.integers(-(10**8), 10**8).map(str), decimal_texts()))
    direction = draw(st.sampled_from(["1", "-1", "0", "-1.0", "1.", "+1"]))
    return ",".join([seconds, kind, order_id, size, price, direction]).encode()


def _book_row(values: list[str]) -> bytes:
    row = BOOKS[3].split(b",")
    for i, value in enumerate(values):
        row[(7 * i) % len(row)] = value.encode()
    return b",".join(row)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(message_rows(), min_size=1, max_size=3),
    st.lists(decimal_texts(), min_size=0, max_size=4),
)
def test_lobster_fast_equals_reference_on_generated_rows(
    rows: list[bytes], book: list[str]
) -> None:
    messages = MESSAGES[:20] + rows + MESSAGES[20 + len(rows) : 40]
    books = [*BOOKS[:30], _book_row(book), *BOOKS[31:40]]
    expected, got = _lobster_both(_join(messages), _join(books))
    assert items_key(got) == items_key(expected)


def test_reference_is_used_for_plain_iterables() -> None:
    """Lists of lines (as the damaged-input tests pass) never reach the fast path."""
    spec = binance.instrument("spot", "BTCUSDT")
    conv = binance.BinanceConverter(spec, False, "f")

    def lines() -> Iterator[Line]:
        yield from _lines(_join(SPOT[:20]))

    items = list(conv.convert(lines()))
    assert sum(len(i) for i in items if isinstance(i, np.ndarray)) > 0
