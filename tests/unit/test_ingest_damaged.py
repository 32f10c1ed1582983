"""Damaged copies of real lines: each lands in quarantine with its reason, line and text."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from ingest_samples import (
    B3,
    BINANCE_SPOT,
    BINANCE_USDM,
    LOBSTER_BOOKS,
    LOBSTER_MESSAGES,
    numbered,
    sample_lines,
)

from engine.app.ingest import b3, binance, lobster
from engine.app.ingest.session import Bad, Item, Oracle
from engine.events.market import F_LAST, LEVEL_UPDATED

_lines = numbered


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
    records, bad, oracle = _lobster_both_files(messages, BOOKS)
    return len(records), bad, oracle


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

    from engine.app.cli import app

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


# -- values too large for their field, and bytes that are not UTF-8 ----------------------------
#
# These used to stop ``tape ingest`` with a traceback (OverflowError when a chunk of records was
# built or an event encoded, UnicodeDecodeError from the JSON decoder). Each must be quarantined
# with its field named, and everything else converted exactly as if the line were not there.

SPOT_LONG = sample_lines(BINANCE_SPOT, 120)
USDM_LONG = sample_lines(BINANCE_USDM, 80)


def _binance_items(raw: list[bytes], market: str) -> list[Item]:
    spec = binance.instrument(market, "BTCUSDT")
    conv = binance.BinanceConverter(spec, market == "usdm", f"{market}.gz")
    return list(conv.convert(_lines(raw)))


def _without_bad(items: list[Item]) -> list[object]:
    """Records as one byte string and events by value: what the journal would hold."""
    records = b"".join(i.tobytes() for i in items if isinstance(i, np.ndarray))
    events = [repr(i) for i in items if not isinstance(i, (np.ndarray, Bad, Oracle))]
    return [records, events]


def _first(lines: list[bytes], marker: bytes, old: bytes, after: int = 8) -> int:
    return next(i for i, x in enumerate(lines) if i > after and marker in x and old in x)


_SPOT_TRADE = _first(SPOT_LONG, b"@trade", b'"t":')
_SPOT_TICKER = _first(SPOT_LONG, b"@bookTicker", b'"u":')
_SPOT_DEPTH = _first(SPOT_LONG, b"@depth", b'"U":')
_SPOT_SNAPSHOT = _first(SPOT_LONG, b"lastUpdateId", b"lastUpdateId", after=-1)
_USDM_DEPTH = _first(USDM_LONG, b"@depth", b'"pu":')
_USDM_TICKER = _first(USDM_LONG, b"@bookTicker", b'"E":')
_USDM_SNAPSHOT = _first(USDM_LONG, b"lastUpdateId", b'"E":', after=-1)
_STAMP = 19  # digits of a receive time in ns


@pytest.mark.parametrize(
    ("market", "index", "old", "new", "reason", "detail"),
    [
        # the receive time: wider than 64 bits, and just past int64
        ("spot", _SPOT_TRADE, None, b"99999999999999999999", "out_of_range", "receive time"),
        ("spot", _SPOT_TRADE, None, b"9223372036854775808", "out_of_range", "receive time"),
        ("spot", _SPOT_TRADE, None, b"9" * 5000, "out_of_range", "(5000 digits)"),
        # trade ids and update ids: negative, or beyond int64
        ("spot", _SPOT_TRADE, b'"t":', b'"t":-', "out_of_range", "trade id t: -"),
        ("spot", _SPOT_TRADE, b'"t":', b'"t":99999999999', "out_of_range", "trade id t"),
        ("spot", _SPOT_TRADE, b'"t":', b'"t":' + b"9" * 5000, "out_of_range", "$.t"),
        ("spot", _SPOT_TICKER, b'"u":', b'"u":-', "out_of_range", "update id u"),
        ("spot", _SPOT_DEPTH, b'"U":', b'"U":99999999999', "out_of_range", "first update id U"),
        ("spot", _SPOT_DEPTH, b'"u":', b'"u":-', "out_of_range", "last update id u"),
        ("usdm", _USDM_DEPTH, b'"pu":', b'"pu":99999999999', "out_of_range", "update id pu"),
        (
            "spot",
            _SPOT_SNAPSHOT,
            b'"lastUpdateId":',
            b'"lastUpdateId":99999999999',
            "out_of_range",
            "lastUpdateId",
        ),
        # the event time E in ms: its ns beyond int64, or negative
        ("spot", _SPOT_TRADE, b'"E":', b'"E":9', "out_of_range", "event time E: 9"),
        ("spot", _SPOT_TRADE, b'"E":', b'"E":-', "out_of_range", "event time E: -"),
        ("spot", _SPOT_DEPTH, b'"E":', b'"E":9', "out_of_range", "event time E"),
        ("usdm", _USDM_TICKER, b'"E":', b'"E":9', "out_of_range", "event time E"),
        ("usdm", _USDM_SNAPSHOT, b'"E":', b'"E":9', "out_of_range", "event time E"),
        # a price of thousands of digits (more than Python converts)
        ("spot", _SPOT_TRADE, b'"p":"', b'"p":"' + b"9" * 5000, "out_of_range", "price: "),
        # a byte that is not UTF-8, in a field read, a field ignored, a key, a snapshot
        ("spot", _SPOT_TRADE, b'"s":"BTC', b'"s":"\xffBTC', "bad_json", "in field 's'"),
        ("spot", _SPOT_TRADE, b'"p":"', b'"p":"\xff', "bad_json", "in field 'p'"),
        ("spot", _SPOT_TRADE, b'"stream":"', b'"stream":"\xff', "bad_json", "field 'stream'"),
        ("spot", _SPOT_TRADE, b'"M":true', b'"M":"\xff"', "bad_json", "in field 'M'"),
        ("spot", _SPOT_TRADE, b'"m":', b'"m\xff":', "bad_json", "in a field name"),
        ("spot", _SPOT_TRADE, b'"s":"BTC', b'"s":"\xc3', "bad_json", "0xc3"),  # cut character
        ("spot", _SPOT_SNAPSHOT, b'"bids":[["', b'"bids":[["\xff', "bad_json", "field 'bids'"),
    ],
)
def test_binance_out_of_range_or_not_utf8_is_quarantined(
    market: str, index: int, old: bytes | None, new: bytes, reason: str, detail: str
) -> None:
    good = SPOT_LONG if market == "spot" else USDM_LONG
    lines = list(good)
    if old is None:  # replace the receive time
        lines[index] = new + lines[index][_STAMP:]
    else:
        assert old in lines[index]
        lines[index] = lines[index].replace(old, new, 1)
    items = _binance_items(lines, market)
    bad = [i for i in items if isinstance(i, Bad)]
    assert [(b.reason, b.line, b.raw) for b in bad] == [
        (reason, index + 1, lines[index].decode(errors="backslashreplace"))
    ]
    assert detail in bad[0].detail
    assert bad[0].byte_offset == sum(len(x) + 1 for x in lines[:index])
    # the rest of the file is converted exactly as if the line had not been there
    removed = _binance_items(lines[:index] + lines[index + 1 :], market)
    assert _without_bad(items) == _without_bad(removed)
    assert len(_without_bad(items)[0]) > 100 * 64


def test_binance_detect_skips_a_line_that_is_not_utf8(tmp_path: Path) -> None:
    from ingest_samples import write_gz

    lines = list(SPOT)
    first_depth = next(i for i, x in enumerate(lines) if b"@depth" in x)
    lines[first_depth] = lines[first_depth].replace(b'"s":"', b'"s":"\xff', 1)
    assert binance.detect(write_gz(tmp_path / "d.gz", lines)) == ("spot", "BTCUSDT")


BIG = "12345678901234567890"  # 20 digits: beyond int64


def _lobster_both_files(
    messages: list[bytes], books: list[bytes]
) -> tuple[np.ndarray, list[Bad], int]:
    """The messages' own records (snapshot included), bad lines and oracle row count.

    The depth corrections the importer inserts (``market.level_updated``) are left out, and
    F_LAST cleared: which rows they follow and which record ends a message depend on which
    orderbook rows survive, which is not what these tests are about.
    """
    conv = lobster.LobsterConverter(date(2012, 6, 21), "m.csv", "b.csv")
    items = list(conv.convert(_lines(messages), _lines(books)))
    oracle = sum(len(i.tops) for i in items if isinstance(i, Oracle))
    records = np.concatenate([i for i in items if isinstance(i, np.ndarray)])
    records = records[records["type_id"] != LEVEL_UPDATED.type_id].copy()
    records["flags"] &= ~np.uint8(F_LAST)
    return records, [i for i in items if isinstance(i, Bad)], oracle


def _column(row: bytes, k: int, value: str) -> bytes:
    cols = row.split(b",")
    cols[k] = value.encode()
    return b",".join(cols)


@pytest.mark.parametrize(
    ("column", "value", "detail"),
    [
        (0, BIG, "time '12345678901234567890' s after midnight"),
        (0, "92233720368.5", "s after midnight"),  # seconds whose ns pass int64
        (2, "99999999999999999999", "order id"),  # beyond the unsigned 64-bit slot
        (2, "9" * 5000, "order id: a number of 5000 digits"),
        (3, BIG, "size: 12345678901234567890"),
        (4, BIG, "price: 12345678901234567890"),
    ],
)
def test_lobster_message_value_out_of_range(column: int, value: str, detail: str) -> None:
    messages = list(MESSAGES)
    messages[10] = _column(messages[10], column, value)
    records, bad, oracle = _lobster_both_files(messages, BOOKS)
    good_records, _, good_oracle = _lobster_both_files(MESSAGES, BOOKS)
    assert [(b.reason, b.line, b.raw, b.source) for b in bad] == [
        ("out_of_range", 11, messages[10].decode(), "m.csv")
    ]
    assert detail in bad[0].detail
    assert oracle == good_oracle  # the orderbook row is kept
    # every other message is converted exactly as if the row had not been there
    removed, _, _ = _lobster_both_files(MESSAGES[:10] + MESSAGES[11:], BOOKS[:10] + BOOKS[11:])
    assert len(records) == len(good_records) - 1
    assert records.tobytes() == removed.tobytes()


def test_lobster_status_message_price_out_of_range() -> None:
    # type 7 (trading status) may have a negative price (-1 halted), but not beyond int64
    messages = list(MESSAGES)
    messages[10] = b"34200.201743336,7,0,0,-" + BIG.encode() + b",-1"
    _, bad, _ = _lobster_both_files(messages, BOOKS)
    assert [(b.reason, b.line, b.raw) for b in bad] == [("out_of_range", 11, messages[10].decode())]
    assert "price: -12345678901234567890" in bad[0].detail


def test_lobster_order_id_in_the_unsigned_slot_is_kept() -> None:
    messages = list(MESSAGES)
    messages[10] = _column(messages[10], 2, str(2**64 - 1))  # fits the u8 order_id slot
    records, bad, _ = _lobster_both_files(messages, BOOKS)
    assert bad == []
    assert int(records["id"].max()) == 2**64 - 1


@pytest.mark.parametrize(
    ("column", "value", "detail"),
    [
        (0, BIG, "column 1 (level 1 ask price)"),
        (1, BIG, "column 2 (level 1 ask size)"),
        (6, "-" + BIG, "column 7 (level 2 bid price)"),
        (39, BIG, "column 40 (level 10 bid size)"),
        (5, "9" * 5000, "orderbook value: a number of 5000 digits"),
    ],
)
def test_lobster_orderbook_value_out_of_range(column: int, value: str, detail: str) -> None:
    books = list(BOOKS)
    books[12] = _column(books[12], column, value)
    records, bad, oracle = _lobster_both_files(MESSAGES, books)
    good_records, _, good_oracle = _lobster_both_files(MESSAGES, BOOKS)
    assert [(b.reason, b.line, b.raw, b.source) for b in bad] == [
        ("out_of_range", 13, books[12].decode(), "b.csv")
    ]
    assert detail in bad[0].detail
    assert records.tobytes() == good_records.tobytes()  # every message is kept
    assert oracle == good_oracle - 1


def test_lobster_first_message_that_overflows_the_snapshot() -> None:
    # Undoing message 1 (a cancel of 18 shares at the best bid) from an orderbook row whose
    # size there is near int64's limit would give a size beyond it.
    books = list(BOOKS)
    assert MESSAGES[0].split(b",")[4] == books[0].split(b",")[2]  # the price of bid level 1
    books[0] = _column(books[0], 3, str(2**63 - 5))
    messages = [_column(MESSAGES[0], 1, "2"), *MESSAGES[1:]]
    conv = lobster.LobsterConverter(date(2012, 6, 21), "m.csv", "b.csv")
    items = list(conv.convert(_lines(messages), _lines(books)))
    bad = [(b.reason, b.line, b.source) for b in items if isinstance(b, Bad)]
    assert bad[:2] == [("out_of_range", 1, "m.csv"), ("no_message", 1, "b.csv")]


@pytest.mark.parametrize(
    ("row", "old", "new", "detail"),
    [
        (6, b"5471.0,398", BIG.encode() + b".0,398", "bid_price_1: 1234567890"),
        (6, b"5471.0,398", b"5471.0," + BIG.encode(), "bid_vol_1: 1234567890"),
        (6, b"5471.0,398", b"9" * 5000 + b",398", "bid_price_1: a number of 5000 digits"),
        (6, b"2025-08-11", b"9999-08-11", "outside the int64 ns range"),
        (1, b"2025-08-11", b"0001-08-11", "outside the int64 ns range"),  # the first row
    ],
)
def test_b3_value_out_of_range(row: int, old: bytes, new: bytes, detail: str) -> None:
    lines = sample_lines(B3, 20)
    if old not in lines[row]:
        row = next(i for i, x in enumerate(lines) if i >= row and old in x)
    lines[row] = lines[row].replace(old, new, 1)
    spec = b3.instrument("WDOU25")
    records, bad = _split(list(b3.B3Converter(spec, "b3.csv").convert(_lines(lines))))
    assert [(b.reason, b.line, b.raw) for b in bad] == [
        ("out_of_range", row + 1, lines[row].decode())
    ]
    assert detail in bad[0].detail
    assert records == 19 - 1


def _cli_case(tmp_path: Path, case: str) -> tuple[list[str], int, str]:
    """Arguments of ``tape ingest`` for a damaged copy of a sample, its bad line and reason."""
    from ingest_samples import write_gz

    if case == "binance-stamp":
        lines = list(SPOT)
        lines[TRADE_LINE] = b"99999999999999999999" + lines[TRADE_LINE][_STAMP:]
        return ["binance", str(write_gz(tmp_path / "d.gz", lines))], TRADE_LINE + 1, "out_of_range"
    if case == "binance-trade-id":
        lines = _damage(TRADE_LINE, b'"t":', b'"t":-')
        return ["binance", str(write_gz(tmp_path / "d.gz", lines))], TRADE_LINE + 1, "out_of_range"
    if case == "binance-event-time":
        lines = _damage(TRADE_LINE, b'"E":', b'"E":99999')
        return ["binance", str(write_gz(tmp_path / "d.gz", lines))], TRADE_LINE + 1, "out_of_range"
    if case == "binance-utf8":
        lines = _damage(TRADE_LINE, b'"s":"', b'"s":"\xff')
        return ["binance", str(write_gz(tmp_path / "d.gz", lines))], TRADE_LINE + 1, "bad_json"
    if case == "lobster-message":
        messages = list(MESSAGES)
        messages[10] = _column(messages[10], 4, BIG)
        m = write_gz(tmp_path / "m.csv.gz", messages)
        b = write_gz(tmp_path / "b.csv.gz", BOOKS)
        args = ["lobster", str(m), str(b), "--symbol", "AAPL", "--date", "2012-06-21"]
        return args, 11, "out_of_range"
    if case == "lobster-orderbook":
        books = list(BOOKS)
        books[10] = _column(books[10], 1, BIG)
        m = write_gz(tmp_path / "m.csv.gz", MESSAGES)
        b = write_gz(tmp_path / "b.csv.gz", books)
        args = ["lobster", str(m), str(b), "--symbol", "AAPL", "--date", "2012-06-21"]
        return args, 11, "out_of_range"
    assert case == "b3"
    lines = sample_lines(B3, 20)
    lines[6] = lines[6].replace(b"5471.0,404", b"5471.0," + BIG.encode(), 1)
    return ["b3", str(write_gz(tmp_path / "b3.csv.gz", lines))], 7, "out_of_range"


@pytest.mark.parametrize(
    "case",
    [
        "binance-stamp",
        "binance-trade-id",
        "binance-event-time",
        "binance-utf8",
        "lobster-message",
        "lobster-orderbook",
        "b3",
    ],
)
def test_cli_quarantines_what_used_to_crash(tmp_path: Path, case: str) -> None:
    import json

    from typer.testing import CliRunner

    from engine.app.cli import app
    from engine.app.ingest.session import read_manifest, session_topics
    from engine.log import EmbeddedLog

    ingest, line, reason = _cli_case(tmp_path, case)
    runner = CliRunner()
    data = str(tmp_path / "data")
    args = ["--data", data, "ingest", *ingest, "--quiet", "--session", "s1"]
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1, strict.output
    assert not isinstance(strict.exception, OverflowError | UnicodeDecodeError)
    assert f":{line} " in strict.output
    assert reason in strict.output
    log = EmbeddedLog(data)
    assert read_manifest(log, "s1") is None  # nothing kept
    assert not any(log.has_topic(t) for t in session_topics("s1"))
    lenient = runner.invoke(app, args)
    assert lenient.exit_code == 0, lenient.output
    assert reason in lenient.output  # the summary's count per reason
    dump = runner.invoke(app, ["--data", data, "dump", "s1.quarantine", "--format", "json"])
    rows = [json.loads(x) for x in dump.output.splitlines() if x.startswith("{")]
    assert [(r["line"], r["reason"]) for r in rows] == [(line, reason)]
    manifest = read_manifest(log, "s1")
    assert manifest is not None
    assert manifest.status == "complete"
    assert manifest.quarantined == {reason: 1}
    assert manifest.records > 0
