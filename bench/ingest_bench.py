"""Ingest and book-processor throughput on the shared real data (``../shared/data``).

Run: ``.venv/bin/python bench/ingest_bench.py``. Prints one line per measurement; each ingest is
into a fresh temporary data directory, timed end to end (read, parse, convert, write the log).
"""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from engine.bookcheck import book_config, read_journal
from engine.ingest import binance, lobster
from engine.ingest.session import IngestJob, run
from engine.ingest.source import InputFile
from engine.log import EmbeddedLog
from streams.book import BookProcessor

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _binance(path: Path, data: Path) -> None:
    market, symbol = binance.detect(path)
    spec = binance.instrument(market, symbol)
    inp = InputFile(path)
    conv = binance.BinanceConverter(spec, market == "usdm", str(path))
    job = IngestJob(EmbeddedLog(data), "b", "bench", "x", [str(path)], spec, "bench")
    t = time.perf_counter()
    s = run(job, conv.convert(inp.lines()), lambda: inp.lines_read)
    dt = time.perf_counter() - t
    print(
        f"ingest {path.name}: {s.lines:,} lines, {s.records:,} records in {dt:.2f} s = "
        f"{s.lines / dt:,.0f} lines/s, {s.records / dt:,.0f} events/s"
    )
    journal = read_journal(EmbeddedLog(data), "b")
    for _ in range(2):  # first run includes numba's load of the cached compile
        book = BookProcessor(book_config(journal.opened.instrument))
        t = time.perf_counter()
        tops = book.process(journal.records, 0)
        dt = time.perf_counter() - t
    n = len(journal.records)
    print(
        f"book {path.name}: {n:,} records in {dt * 1e3:.1f} ms = {n / dt:,.0f} events/s "
        f"({len(tops):,} tops)"
    )


def _lobster(data: Path) -> None:
    m = SHARED / "lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
    b = SHARED / "lobster/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
    files = [InputFile(m), InputFile(b)]
    conv = lobster.LobsterConverter(date(2012, 6, 21), str(m), str(b))
    job = IngestJob(EmbeddedLog(data), "l", "bench", "x", [], lobster.instrument("AAPL"), "bench")
    t = time.perf_counter()
    s = run(job, conv.convert(files[0].lines(), files[1].lines()), lambda: files[0].lines_read)
    dt = time.perf_counter() - t
    print(
        f"ingest LOBSTER pair: {s.lines:,} rows (message+orderbook pairs) in {dt * 1e3:.0f} ms = "
        f"{s.lines / dt:,.0f} rows/s"
    )


def main() -> None:
    """Run every measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("binance_usdm_btcusdt_20240808.gz", "binance_spot_btcusdt_20240808.gz"):
            _binance(SHARED / "crypto" / name, Path(tmp) / name)
        _lobster(Path(tmp) / "lobster")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
