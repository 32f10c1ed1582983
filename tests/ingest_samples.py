"""Real sample lines (from ``replays/samples``) for importer tests, and damage to apply."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.ingest.source import Line

SAMPLES = Path(__file__).resolve().parents[1] / "replays" / "samples"
LOBSTER_MESSAGES = SAMPLES / "lobster_AAPL_2012-06-21_message_10.csv.gz"
LOBSTER_BOOKS = SAMPLES / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz"
BINANCE_SPOT = SAMPLES / "binance_spot_btcusdt_20240808_head3000.gz"
BINANCE_USDM = SAMPLES / "binance_usdm_btcusdt_20240808_head3000.gz"
B3 = SAMPLES / "b3_wdou25_20250811_head2000.csv.gz"


def sample_lines(path: Path, n: int | None = None) -> list[bytes]:
    """The first ``n`` lines of a sample, without newlines."""
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines[:n] if n is not None else lines


def write_gz(path: Path, lines: list[bytes]) -> Path:
    """Write lines as a gzip file (what a damaged copy of a recording looks like)."""
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    return path


def tape(data: Path, *args: str) -> tuple[int, str]:
    """Run ``tape --data DATA ARGS...`` in-process: (exit code, output)."""
    from typer.testing import CliRunner

    from engine.app.cli import app

    result = CliRunner().invoke(app, ["--data", str(data), *args])
    return result.exit_code, result.output


def counts(output: str) -> dict[str, int]:
    """The ``name │ number`` rows of a summary or book-check table."""
    found = re.findall(r"│\s+([A-Za-z][^│]*?)\s*│\s*([\d,]+) │", output)
    return {k.strip(): int(v.replace(",", "")) for k, v in found}


def numbered(raw: list[bytes]) -> list[Line]:
    """Lines as an importer reads them: numbered from 1, with their byte offsets."""
    out, offset = [], 0
    for i, line in enumerate(raw, 1):
        out.append(Line(i, offset, line))
        offset += len(line) + 1
    return out


def books_after_messages(data: Path, session: str) -> list[tuple[list[Any], list[Any]]]:
    """(bids, asks) of the session's book after each message (record with F_LAST)."""
    from engine.app.bookcheck import read_journal
    from engine.events.market import F_LAST
    from engine.log import EmbeddedLog
    from streams.book import BookProcessor

    journal = read_journal(EmbeddedLog(data), session)
    book = BookProcessor(journal.book)
    states, done = [], 0
    for i in np.flatnonzero(journal.records["flags"] & F_LAST).tolist():
        book.process(journal.records[done : i + 1], int(journal.offsets[done]))
        done = i + 1
        states.append((book.levels(1), book.levels(-1)))
    return states
