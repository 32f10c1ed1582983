"""Damaged copies of real lines: each lands in quarantine with its reason, line and text."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from ingest_samples import (
    B3,
    BINANCE_SPOT,
    LOBSTER_BOOKS,
    LOBSTER_MESSAGES,
    sample_lines,
)

from engine.ingest import b3, binance, lobster
from engine.ingest.session import Bad, Item, Oracle
from engine.ingest.source import Line


def _lines(raw: list[bytes]) -> list[Line]:
    out, offset = [], 0
    for i, line in enumerate(raw, 1):
        out.append(Line(i, offset, line))
        offset += len(line) + 1
    return out


def _split(items: list[Item]) -> tuple[int, list[Bad]]:
    records = sum(len(i) for i in items if isinstance(i, np.ndarray))
    return records, [i for i in items if isinstance(i, Bad)]


def _binance(raw: list[bytes]) -> tuple[int, list[Bad]]:
    spec = binance.instrument("spot", "BTCUSDT")
    return _split(list(binance.BinanceConverter(spec, False, "spot.gz").convert(_lines(raw))))


SPOT = sample_lines(BINANCE_SPOT, 40)
TRADE_LINE = 3  # 0-based index of a btcusdt@trade line in the sample
TICKER_LINE = 2


def _damage(index: int, old: bytes, new: bytes) -> list[bytes]:
    lines = list(SPOT)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    return lines


@pytest.mark.parametrize(
    ("lines", "index", "reason"),
    [
        (
            [*SPOT[:TRADE_LINE], SPOT[TRADE_LINE][:80], *SPOT[TRADE_LINE + 1 :]],
            TRADE_LINE,
            "bad_json",
        ),
        (
            _damage(TRADE_LINE, b'"p":"61837.63000000"', b'"p":"61837.6x"'),
            TRADE_LINE,
            "not_numeric",
        ),
        (
            _damage(TRADE_LINE, b'"q":"0.02000000"', b'"q":"-0.02000000"'),
            TRADE_LINE,
            "negative_size",
        ),
        (_damage(TRADE_LINE, b'"e":"trade"', b'"e":"aggTrade"'), TRADE_LINE, "unknown_event"),
        (_damage(TRADE_LINE, b"@trade", b"@kline_1m"), TRADE_LINE, "unknown_event"),
        (_damage(TRADE_LINE, b'"p":"61837.63000000"', b'"p":61837.63'), TRADE_LINE, "bad_field"),
        (_damage(TRADE_LINE, b'"p":"61837.63000000"', b'"p":"61837.631"'), TRADE_LINE, "precision"),
        (
            _damage(TICKER_LINE, b"1723161254087891268", b"1723161200000000000"),
            TICKER_LINE,
            "time_backwards",
        ),
        (_damage(TICKER_LINE, b"1723161254087891268 ", b""), TICKER_LINE, "bad_line"),
    ],
)
def test_binance_bad_line_is_quarantined_and_ingest_goes_on(
    lines: list[bytes], index: int, reason: str
) -> None:
    good_records, good_bad = _binance(SPOT)
    records, bad = _binance(lines)
    assert good_bad == []
    assert [(b.reason, b.line, b.raw) for b in bad] == [(reason, index + 1, lines[index].decode())]
    assert bad[0].byte_offset == sum(len(x) + 1 for x in lines[:index])
    assert 0 < good_records - records <= 1  # only the bad line's record is missing


def test_binance_missing_depth_message_is_a_gap() -> None:
    spot = sample_lines(BINANCE_SPOT, 400)
    depth = [i for i, line in enumerate(spot) if b"@depth" in line and i > 8]
    lines = [line for i, line in enumerate(spot) if i != depth[1]]
    spec = binance.instrument("spot", "BTCUSDT")
    converter = binance.BinanceConverter(spec, False, "spot.gz")
    items = list(converter.convert(_lines(lines)))
    gaps = [i for i in items if type(i).__name__ == "FeedGapDetected"]
    assert converter.gaps == 1
    assert len(gaps) == 1
    assert "U must equal the previous u + 1" in gaps[0].detail  # type: ignore[union-attr]


MESSAGES = sample_lines(LOBSTER_MESSAGES, 30)
BOOKS = sample_lines(LOBSTER_BOOKS, 30)


def _lobster(messages: list[bytes]) -> tuple[int, list[Bad], int]:
    conv = lobster.LobsterConverter(date(2012, 6, 21), "m.csv", "b.csv")
    items = list(conv.convert(_lines(messages), _lines(BOOKS)))
    oracle = sum(len(i.tops) for i in items if isinstance(i, Oracle))
    records, bad = _split(items)
    return records, bad, oracle


@pytest.mark.parametrize(
    ("row", "new", "reason"),
    [
        ("34200.01,1,1,1,5853300", None, "bad_columns"),
        ("34200.01,1,1,x,5853300,1", None, "not_numeric"),
        ("34200.01,1,1,-5,5853300,1", None, "negative_size"),
        ("34200.01,9,1,5,5853300,1", None, "unknown_event"),
        ("34100.0,1,1,5,5853300,1", None, "time_backwards"),
    ],
)
def test_lobster_bad_row_is_quarantined(row: str, new: None, reason: str) -> None:
    messages = list(MESSAGES)
    messages[10] = row.encode()
    records, bad, oracle = _lobster(messages)
    good_records, _, good_oracle = _lobster(MESSAGES)
    assert [(b.reason, b.line, b.raw, b.source) for b in bad] == [(reason, 11, row, "m.csv")]
    assert records == good_records - 1
    assert oracle == good_oracle  # the orderbook row is kept


def test_b3_bad_rows() -> None:
    lines = sample_lines(B3, 20)
    lines[5] = lines[5].replace(b"5471.0,404", b"5471.0,-404", 1)
    lines[6] = lines[6][:40]
    spec = b3.instrument("WDOU25")
    records, bad = _split(list(b3.B3Converter(spec, "b3.csv").convert(_lines(lines))))
    assert [(b.reason, b.line) for b in bad] == [("negative_size", 6), ("bad_columns", 7)]
    assert records == 19 - 2


def test_b3_time_is_exact_utc() -> None:
    from zoneinfo import ZoneInfo

    assert b3.local_ns("2025-08-11 10:56:19.677243", ZoneInfo(b3.TIME_ZONE)) == 1754920579677243000


def test_lobster_time_is_exact_utc() -> None:
    assert lobster.midnight_ns(date(2012, 6, 21)) + 34200_004241176 == 1340285400004241176


def test_damaged_file_cli_strict(tmp_path: Path) -> None:
    from ingest_samples import write_gz
    from typer.testing import CliRunner

    from engine.cli import app

    lines = list(SPOT)
    lines[TRADE_LINE] = lines[TRADE_LINE][:50]
    path = write_gz(tmp_path / "damaged.gz", lines)
    runner = CliRunner()
    data = str(tmp_path / "data")
    args = ["--data", data, "ingest", "binance", str(path), "--quiet"]
    strict = runner.invoke(app, [*args, "--session", "s1", "--strict"])
    assert strict.exit_code == 1
    assert "damaged.gz:4" in strict.output
    assert "bad_json" in strict.output
    lenient = runner.invoke(app, [*args, "--session", "s1"])
    assert lenient.exit_code == 0, lenient.output
    assert "bad_json" in lenient.output
    dump = runner.invoke(app, ["--data", data, "dump", "s1.quarantine", "--format", "json"])
    assert '"line":4' in dump.output
    assert '"reason":"bad_json"' in dump.output
