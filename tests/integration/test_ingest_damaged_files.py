"""Damaged input is kept and told: each case of docs/ingest.md's table, through ``tape ingest``.

Every damaged file is a real sample (``replays/samples``) damaged here the way it happens: a
recorder killed mid-write (compressed stream cut), a file saved empty, in UTF-16, with CRLF line
ends, with a line written twice, or given to the wrong importer.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest
import zstandard
from ingest_samples import (
    B3,
    BINANCE_SPOT,
    LOBSTER_BOOKS,
    LOBSTER_MESSAGES,
    SAMPLES,
    counts,
    sample_lines,
    tape,
    write_gz,
)

from engine.app.bookcheck import read_journal
from engine.app.ingest.session import read_manifest
from engine.events import decode
from engine.events.control import SessionClosed
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic

TARDIS_QUOTES = SAMPLES / "tardis_binance-futures_quotes_BTCUSDT_2020-02-22_head200.csv.gz"


def _closed(data: Path, session: str) -> SessionClosed:
    reader = EmbeddedLog(data).reader(journal_topic(session))
    events = [v for b in reader.batches() if not isinstance(b, FixedBatch) for v in b.values()]
    event = decode(events[-1])
    assert isinstance(event, SessionClosed)
    return event


def test_binance_recording_cut_short(tmp_path: Path) -> None:
    """The issue's case: a recorder killed mid-write, the gzip ends early."""
    whole = BINANCE_SPOT.read_bytes()
    cut = tmp_path / "spot_cut.gz"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    data = tmp_path / "data"
    code, out = tape(data, "ingest", "binance", str(cut), "--session", "s")
    assert code == 0, out
    assert "input ended early" in out
    assert f"cut short at compressed byte {cut.stat().st_size:,}" in out
    assert "the last complete line is line" in out
    found = counts(out)
    assert found["truncated"] == 1  # the line it broke off in, kept in the quarantine
    assert found["market records"] > 1000
    manifest = read_manifest(EmbeddedLog(data), "s")
    assert manifest is not None
    assert manifest.status == "complete"
    assert len(manifest.ended_early) == 1
    assert _closed(data, "s").reason.startswith("input ended early")
    # --strict: exit 1, naming the same place, and nothing kept
    code, out = tape(data, "ingest", "binance", str(cut), "--session", "t", "--strict")
    assert code == 1
    assert f"compressed byte {cut.stat().st_size:,}" in out
    assert not EmbeddedLog(data).has_topic(journal_topic("t"))


def test_zstd_stream_cut_short(tmp_path: Path) -> None:
    text = gzip.decompress(TARDIS_QUOTES.read_bytes())
    writer = zstandard.ZstdCompressor().compressobj()
    lines = text.splitlines(keepends=True)
    flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
    blocks = [
        writer.compress(b"".join(lines[i : i + 20])) + writer.flush(flush)
        for i in range(0, len(lines), 20)
    ]
    cut = tmp_path / "binance-futures_quotes_BTCUSDT.csv.zst"
    cut.write_bytes(b"".join(blocks)[:-10])
    code, out = tape(tmp_path / "data", "ingest", "tardis", str(cut), "--session", "q")
    assert code == 0, out
    assert "input ended early" in out
    assert "zstd stream ends inside a frame" in out
    assert 150 < counts(out)["market records"] < 200


@pytest.mark.parametrize(
    ("importer", "name"),
    [
        ("binance", "empty.gz"),
        ("lobster", "AAPL_2012-06-21_34200000_57600000_message_10.csv"),
        ("b3", "empty.csv"),
        ("tardis", "empty.csv.gz"),
        ("databento", "empty.dbn.zst"),
    ],
)
def test_empty_file(tmp_path: Path, importer: str, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"" if not name.endswith(".gz") else gzip.compress(b""))
    code, out = tape(tmp_path / "data", "ingest", importer, str(path), "--session", "e")
    assert code == 2
    assert "is empty" in out or "holds no data" in out
    assert not (tmp_path / "data" / "topics").exists()


@pytest.mark.parametrize(
    ("importer", "given", "fits"),
    [
        ("lobster", BINANCE_SPOT, "tape ingest binance"),
        ("tardis", LOBSTER_MESSAGES, "tape ingest lobster"),
        ("binance", TARDIS_QUOTES, "tape ingest tardis"),
        ("databento", B3, "tape ingest b3"),
        ("b3", LOBSTER_BOOKS, "tape ingest lobster"),
    ],
)
def test_wrong_format_says_which_importer_fits(
    tmp_path: Path, importer: str, given: Path, fits: str
) -> None:
    args = ["ingest", importer, str(given), "--session", "w"]
    if importer == "lobster":
        args += ["--symbol", "X", "--date", "2024-08-08", "--levels", "1"]
    code, out = tape(tmp_path / "data", *args)
    assert code == 2
    assert fits in out


def test_utf16_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    text = gzip.decompress(B3.read_bytes()).decode()
    path = tmp_path / "b3_utf16.csv"
    path.write_bytes(text.encode("utf-16"))
    code, out = tape(tmp_path / "data", "ingest", "b3", str(path), "--session", "u")
    assert code == 2
    assert "UTF-16" in out
    assert "iconv" in out


def _records(data: Path, session: str) -> bytes:
    return read_journal(EmbeddedLog(data), session).records.tobytes()


def test_crlf_line_ends_give_the_same_records(tmp_path: Path) -> None:
    crlf = [
        tmp_path / "AAPL_2012-06-21_34200000_57600000_message_10.csv",
        tmp_path / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv",
    ]
    for src, dst in zip((LOBSTER_MESSAGES, LOBSTER_BOOKS), crlf, strict=True):
        dst.write_bytes(b"\r\n".join(sample_lines(src)) + b"\r\n")
    b3 = write_gz(tmp_path / "b3.csv.gz", [line + b"\r" for line in sample_lines(B3)])
    data = tmp_path / "data"
    pairs = [
        (
            ["lobster", *map(str, crlf)],
            [
                "lobster",
                str(LOBSTER_MESSAGES),
                str(LOBSTER_BOOKS),
                "--symbol",
                "AAPL",
                "--date",
                "2012-06-21",
            ],
        ),
        (["b3", str(b3)], ["b3", str(B3)]),
    ]
    for k, (damaged, original) in enumerate(pairs):
        assert tape(data, "ingest", *damaged, "--session", f"crlf{k}", "--quiet")[0] == 0
        assert tape(data, "ingest", *original, "--session", f"lf{k}", "--quiet")[0] == 0
        assert _records(data, f"crlf{k}") == _records(data, f"lf{k}")


def test_duplicated_lines_are_quarantined(tmp_path: Path) -> None:
    lines = sample_lines(BINANCE_SPOT, 400)
    trade = next(i for i, line in enumerate(lines) if b"@trade" in line and i > 10)
    depth = next(i for i, line in enumerate(lines) if b"@depth" in line and i > 10)
    twice = list(lines)
    for i in sorted((trade, depth), reverse=True):
        twice.insert(i + 1, lines[i])
    data = tmp_path / "data"
    code, out = tape(
        data, "ingest", "binance", str(write_gz(tmp_path / "twice.gz", twice)), "--session", "d"
    )
    assert code == 0, out
    assert counts(out)["duplicate"] == 2
    assert (
        tape(
            data, "ingest", "binance", str(write_gz(tmp_path / "once.gz", lines)), "--session", "o"
        )[0]
        == 0
    )
    assert _records(data, "d") == _records(data, "o")


def test_b3_without_its_header(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "b3.csv.gz", sample_lines(B3)[1:])
    code, out = tape(tmp_path / "data", "ingest", "b3", str(path), "--session", "b")
    assert code == 2
    assert "no header line" in out


def test_quarantined_lines_keep_their_place(tmp_path: Path) -> None:
    """What quarantine keeps: file, line, byte offset and the raw text, readable with dump."""
    lines = sample_lines(BINANCE_SPOT, 40)
    lines[20] = lines[20][:60]
    data = tmp_path / "data"
    path = write_gz(tmp_path / "bad.gz", lines)
    assert tape(data, "ingest", "binance", str(path), "--session", "b", "--quiet")[0] == 0
    code, out = tape(data, "dump", "b.quarantine", "--format", "json")
    assert code == 0
    row = msgspec.json.decode(out.strip().splitlines()[-1])
    assert (row["line"], row["reason"]) == (21, "bad_json")
    assert row["byte_offset"] == sum(len(line) + 1 for line in lines[:20])
