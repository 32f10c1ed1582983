"""``tape topics | dump | stats | verify``: what a user sees of a real session journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from engine.app.cli import app
from engine.events.control import (
    ClockTicked,
    HaltTrading,
    InstrumentSpec,
    RecordQuarantined,
    SessionClosed,
    SessionOpened,
)
from engine.events.market import BUY, QUOTE, SELL, TRADE, new_records
from engine.log import EmbeddedLog
from engine.log.journal import JournalWriter

SPEC = InstrumentSpec("AAPL", "NASDAQ", "America/New_York", 4, 0, 100, 1, "USD")
T0 = 1_340_285_400_000_000_000  # 2012-06-21T13:30:00Z
TRADES = [(BUY, 5_853_000, 100, 11), (SELL, 5_852_900, 25, 12), (BUY, 5_853_100, 300, 13)]
EXPECTED_TYPES = [
    "session.opened@1",
    "market.trade@1",
    "market.trade@1",
    "market.trade@1",
    "market.quote@1",
    "clock.ticked@1",
    "control.halt_trading@1",
    "session.closed@1",
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with session ``demo``: a journal of 8 events and 1 quarantined record."""
    root = tmp_path / "tapedata"
    journal = JournalWriter(EmbeddedLog(root), "demo")
    journal.event(SessionOpened(T0, T0 + 1, "demo", SPEC, "test fixture"))
    trades = new_records(TRADE, len(TRADES))
    for i, (side, price, size, trade_id) in enumerate(TRADES):
        trades[i]["side"], trades[i]["price"] = side, price
        trades[i]["size"], trades[i]["trade_id"] = size, trade_id
        trades[i]["ts_event"] = trades[i]["ts_recv"] = T0 + 1_000 * (i + 1)
    journal.market(trades)
    quote = new_records(QUOTE, 1)
    quote["bid_price"], quote["ask_price"] = 5_852_900, 5_853_100
    quote["bid_size"], quote["ask_size"] = 400, 200
    quote["ts_event"] = T0 + 5_000
    journal.market(quote)
    journal.event(ClockTicked(T0 + 6_000, T0 + 6_000))
    journal.event(HaltTrading(T0 + 7_000, T0 + 7_000, "fat finger drill", "alice"))
    journal.event(SessionClosed(T0 + 8_000, T0 + 8_000, "demo", "end of input"))
    journal.quarantine(
        RecordQuarantined(T0, T0, "msgs.csv", 42, 1234, "x,y", "bad_row", "two fields, not six")
    )
    journal.close()
    return root


def tape(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--data", str(data), *args], env={"COLUMNS": "250"})


def squash(text: str) -> str:
    """Text without whitespace, so assertions do not depend on how rich wraps lines."""
    return "".join(text.split())


def test_topics_lists_both_session_topics(data: Path) -> None:
    result = tape(data, "topics")
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "demo." in line
    }
    assert set(rows) == {"demo.journal", "demo.quarantine"}
    journal = [cell.strip() for cell in rows["demo.journal"].split("│")[1:-1]]
    assert journal[:5] == ["demo.journal", "1", "mixed", "tapedeck.journal@1", "8"]
    quarantine = [cell.strip() for cell in rows["demo.quarantine"].split("│")[1:-1]]
    assert quarantine[:5] == [
        "demo.quarantine",
        "1",
        "msgpack",
        "quarantine.record_quarantined@1",
        "1",
    ]


def test_dump_json_shows_decoded_fields(data: Path) -> None:
    result = tape(data, "dump", "demo.journal", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["offset"] for row in rows] == list(range(8))
    assert [row["type"] for row in rows] == EXPECTED_TYPES
    opened = rows[0]
    assert opened["instrument"]["symbol"] == "AAPL"
    assert opened["source"] == "test fixture"
    assert opened["timestamp"] == opened["ts_event"] == T0
    for row, (side, price, size, trade_id) in zip(rows[1:4], TRADES, strict=True):
        assert (row["side"], row["price"], row["size"], row["trade_id"]) == (
            side,
            price,
            size,
            trade_id,
        )
    assert [row["timestamp"] for row in rows[1:4]] == [T0 + 1_000, T0 + 2_000, T0 + 3_000]
    assert (rows[4]["bid_price"], rows[4]["ask_size"]) == (5_852_900, 200)
    assert (rows[6]["reason"], rows[6]["operator"]) == ("fat finger drill", "alice")
    assert rows[7]["reason"] == "end of input"


def test_dump_from_and_limit(data: Path) -> None:
    result = tape(data, "dump", "demo.journal", "--from", "4", "--limit", "2", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["offset"], row["type"]) for row in rows] == [
        (4, "market.quote@1"),
        (5, "clock.ticked@1"),
    ]


def test_dump_quarantine(data: Path) -> None:
    result = tape(data, "dump", "demo.quarantine", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["type"] == "quarantine.record_quarantined@1"
    assert (row["source"], row["line"], row["byte_offset"], row["reason"]) == (
        "msgs.csv",
        42,
        1234,
        "bad_row",
    )


def test_dump_table_shows_types_times_and_fields(data: Path) -> None:
    result = tape(data, "dump", "demo.journal")
    assert result.exit_code == 0, result.output
    text = squash(result.stdout)
    for type_name in set(EXPECTED_TYPES):
        assert type_name in text
    assert "2012-06-21T13:30:00.000001000Z" in text  # the first trade's event time
    for _, price, size, trade_id in TRADES:
        assert f"price={price}" in text
        assert f"size={size}" in text
        assert f"trade_id={trade_id}" in text
    assert "reason=fatfingerdrill" in text
    assert "symbol=AAPL" in text


def test_stats_counts_records_per_type(data: Path) -> None:
    result = tape(data, "stats", "demo.journal")
    assert result.exit_code == 0, result.output
    rows = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    table = {row[0]: row[-1] for row in rows if len(row) >= 2}
    assert table["records"] == "8"
    assert table["offsets"] == "0..7"
    for name in set(EXPECTED_TYPES):
        assert table[name] == str(EXPECTED_TYPES.count(name)), name
    assert "2012-06-21T13:30:00.000000000Z" in result.stdout


def test_verify_a_clean_journal(data: Path) -> None:
    result = tape(data, "verify", "demo.journal")
    assert result.exit_code == 0, result.output
    assert "8 records intact" in result.stdout


def test_verify_reports_a_flipped_byte(data: Path) -> None:
    segment = data / "topics" / "demo.journal" / "0" / f"{0:020d}.data"
    raw = bytearray(segment.read_bytes())
    raw[10] ^= 0xFF  # inside the first batch (session.opened)
    segment.write_bytes(bytes(raw))
    result = tape(data, "verify", "demo.journal")
    assert result.exit_code == 1
    text = squash(result.output)
    assert squash(str(segment)) in text
    assert "offset0" in text
    assert "CRC32C" in text
    assert "intact" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dump", "nope"], "'nope' does not exist"),
        (["stats", "nope"], "topics there: demo.journal, demo.quarantine"),
        (["verify", "nope"], "tape topics"),
        (["dump", "demo.journal", "--from", "99"], "--from 99 is outside"),
        (["dump", "demo.journal", "--from", "-1"], "holds offsets 0..7"),
        (["dump", "demo.journal", "--format", "xml"], "table or json"),
        (["dump", "demo.journal", "--partition", "3"], "no partition 3"),
    ],
)
def test_errors_are_clear_and_exit_non_zero(data: Path, args: list[str], message: str) -> None:
    result = tape(data, *args)
    assert result.exit_code != 0
    assert "error:" in result.stderr
    assert squash(message) in squash(result.stderr)
    assert "Traceback" not in result.output


def test_missing_data_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for command in (["topics"], ["dump", "x"], ["stats", "x"], ["verify", "x"]):
        result = tape(missing, *command)
        assert result.exit_code != 0
        assert squash(f"data directory {missing} does not exist") in squash(result.stderr)
    assert not missing.exists()


def test_bad_fsync_option(data: Path) -> None:
    result = CliRunner().invoke(app, ["--data", str(data), "--fsync", "sometimes", "topics"])
    assert result.exit_code != 0
    assert "unknown fsync policy" in result.stderr
