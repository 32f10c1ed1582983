"""Ingest and book-processor throughput on the shared real data (``../shared/data``).

Run: ``.venv/bin/python bench/ingest_bench.py``. Each measurement runs in a fresh child process
(so its peak RSS is its own) and ingests into a fresh temporary data directory, timed end to end
as ``tape ingest`` does it: read, gunzip, parse, convert and write the log, with the default
fsync policy (``batch``: each batch is on disk before the next), and for the large LOBSTER input
also with ``never``, which shows the rate without the disk's limit. Before timing, the child
ingests a few sample lines so that the one-off load of the compiled (numba) parsers is not
counted; ``rss0`` is the peak RSS at that point, ``rss`` the peak after the measurement. Dirty
pages are written back (``os.sync``) before each measurement, so none pays for an earlier one's
output.

Each ingest is measured ``RUNS`` times; the median is printed with every run's rate, because
fsync times on a shared VM disk vary a lot from run to run.

Inputs: the shared Binance recordings and LOBSTER pairs (the AAPL sample and the whole GOOG
day), plus, in a temporary directory, the USD-M recording repeated 10 times (receive stamps
shifted so time keeps increasing), the AAPL pair tiled to ~50 k, ~500 k and ~5 M rows (times
shifted by 50 s per tile), the Tardis quotes and trades tiled to ~1 M rows each, and the
Databento ESH4 MBO file tiled to ~2 M records. They are for rate and for showing that memory
does not grow with input length.

``--only NAME[,NAME]`` runs some of the groups (binance, book, lobster, goog, tardis,
databento). The last line is one JSON object with the median rate of each measurement.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "replays" / "samples"
USDM = SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz"
SPOT = SHARED / "crypto" / "binance_spot_btcusdt_20240808.gz"
LOB_M = SHARED / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
LOB_B = SHARED / "lobster" / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
GOOG_M = SHARED / "lobster" / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
GOOG_B = SHARED / "lobster" / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"
TARDIS = [
    SHARED / "tardis" / f"binance-futures_{k}_BTCUSDT_2020-02-22.csv" for k in ("quotes", "trades")
]
TARDIS_TILES = 100  # x 9,999 rows a file
MBO = SHARED / "databento" / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
MBO_TILES = 30  # x 68,792 records
LOBSTER_TILES = 5006  # x 999 rows = 5,000,994 rows
LOBSTER_SMALLER = (50, 500)  # the same tiling, shorter: memory must not grow with length
USDM_REPEATS = 10
RUNS = 3  # each ingest measurement; the median is reported, with every run's rate


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _binance(path: Path, data: Path) -> dict[str, Any]:
    from engine.app.ingest import binance
    from engine.app.ingest.session import IngestJob, run
    from engine.app.ingest.source import InputFile
    from engine.log import EmbeddedLog

    market, symbol = binance.detect(path)
    spec = binance.instrument(market, symbol)
    inp = InputFile(path)
    conv = binance.BinanceConverter(spec, market == "usdm", str(path))
    job = IngestJob(EmbeddedLog(data), "b", "bench", "x", [str(path)], spec, "bench")
    t = time.perf_counter()
    s = run(job, conv.convert(inp.lines()), lambda: inp.lines_read)
    dt = time.perf_counter() - t
    quarantined = sum(s.quarantined.values())
    return {"lines": s.lines, "records": s.records, "seconds": dt, "quarantined": quarantined}


def _lobster(messages: Path, books: Path, data: Path, fsync: str = "batch") -> dict[str, Any]:
    from engine.app.ingest import lobster
    from engine.app.ingest.session import IngestJob, run
    from engine.app.ingest.source import InputFile
    from engine.log import EmbeddedLog, FsyncPolicy

    files = [InputFile(messages), InputFile(books)]
    conv = lobster.LobsterConverter(date(2012, 6, 21), str(messages), str(books))
    log = EmbeddedLog(data, FsyncPolicy.parse(fsync))
    job = IngestJob(log, "l", "bench", "x", [], lobster.instrument("AAPL"), "bench")
    t = time.perf_counter()
    s = run(job, conv.convert(files[0].lines(), files[1].lines()), lambda: files[0].lines_read)
    dt = time.perf_counter() - t
    quarantined = sum(s.quarantined.values())
    return {"rows": s.lines, "records": s.records, "seconds": dt, "quarantined": quarantined}


def _tardis(paths: list[Path], data: Path) -> dict[str, Any]:
    from engine.app.ingest import tardis
    from engine.app.ingest.merge import merge
    from engine.app.ingest.session import IngestJob, run
    from engine.app.ingest.source import InputFile
    from engine.log import EmbeddedLog

    found = [tardis.inspect(p) for p in paths]
    spec = tardis.instrument(found[0].exchange, found[0].symbol, None, None, found)
    inputs = [InputFile(p) for p in paths]
    streams = [
        tardis.TardisConverter(f, spec, f.exchange).convert(i.lines())
        for f, i in zip(found, inputs, strict=True)
    ]
    job = IngestJob(EmbeddedLog(data), "t", "bench", "x", [], spec, "bench")
    t = time.perf_counter()
    s = run(job, merge(streams), lambda: sum(i.lines_read for i in inputs), inputs)
    dt = time.perf_counter() - t
    quarantined = sum(s.quarantined.values())
    return {
        "rows": s.lines - len(paths),
        "records": s.records,
        "seconds": dt,
        "quarantined": quarantined,
    }


def _databento(path: Path, data: Path) -> dict[str, Any]:
    from engine.app.ingest import databento
    from engine.app.ingest.session import IngestJob, run
    from engine.app.ingest.source import InputFile
    from engine.log import EmbeddedLog

    found = databento.inspect(path)
    symbol, ids = databento.instrument_ids([found], None)
    spec = databento.instrument(symbol, [found], [])
    inp = InputFile(path)
    conv = databento.DatabentoConverter(found, ids)
    job = IngestJob(EmbeddedLog(data), "d", "bench", "x", [], spec, "bench")
    t = time.perf_counter()
    s = run(job, conv.convert(inp), lambda: inp.lines_read, [inp])
    dt = time.perf_counter() - t
    quarantined = sum(s.quarantined.values())
    return {"rows": s.lines, "records": s.records, "seconds": dt, "quarantined": quarantined}


def _book(path: Path, data: Path) -> dict[str, Any]:
    from engine.app.bookcheck import read_journal
    from engine.log import EmbeddedLog
    from streams.book import BookProcessor

    _binance(path, data)
    journal = read_journal(EmbeddedLog(data), "b")
    dt, tops = 0.0, 0
    for _ in range(2):  # first run includes numba's load of the cached compile
        book = BookProcessor(journal.book)
        t = time.perf_counter()
        tops = len(book.process(journal.records, 0))
        dt = time.perf_counter() - t
    return {"records": len(journal.records), "seconds": dt, "tops": tops}


def _warm_up(tmp: Path) -> None:
    """Load the compiled parsers (numba's cache) before anything is timed."""
    head = tmp / "warm.gz"
    with gzip.open(SAMPLES / "binance_usdm_btcusdt_20240808_head3000.gz") as f:
        head.write_bytes(gzip.compress(b"".join(f.readline() for _ in range(100))))
    _binance(head, tmp / "warm-b")
    _lobster(LOB_M, LOB_B, tmp / "warm-l")
    _tardis(TARDIS, tmp / "warm-t")
    _databento(MBO, tmp / "warm-d")


def child(kind: str, args: list[str]) -> None:
    """One measurement (or input generation) in this process; prints a JSON line."""
    if kind == "make-binance":
        print(json.dumps({"path": str(repeat_binance(Path(args[0]), USDM, USDM_REPEATS))}))
        return
    if kind == "make-lobster":
        messages, books, rows = tile_lobster(Path(args[1]), int(args[0]))
        print(json.dumps({"messages": str(messages), "books": str(books), "rows": rows}))
        return
    if kind == "make-tardis":
        print(json.dumps({"paths": [str(tile_tardis(Path(args[0]), p)) for p in TARDIS]}))
        return
    if kind == "make-databento":
        print(json.dumps({"path": str(tile_dbn(Path(args[0])))}))
        return
    with tempfile.TemporaryDirectory(dir=args[-1]) as tmp_name:
        tmp = Path(tmp_name)
        _warm_up(tmp)
        rss0 = _rss_mb()
        if kind == "binance":
            result = _binance(Path(args[0]), tmp / "out")
        elif kind == "lobster":
            result = _lobster(Path(args[0]), Path(args[1]), tmp / "out", args[2])
        elif kind == "tardis":
            result = _tardis([Path(a) for a in args[:-1]], tmp / "out")
        elif kind == "databento":
            result = _databento(Path(args[0]), tmp / "out")
        else:
            result = _book(Path(args[0]), tmp / "out")
    result.update(rss0=rss0, rss=_rss_mb())
    print(json.dumps(result))


def _measure(kind: str, *args: Path | str) -> dict[str, Any]:
    # The parent stays small (the big inputs are made in children too): Linux carries a
    # process's peak RSS across fork+exec, so a large parent would inflate every child's.
    os.sync()
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def tile_lobster(directory: Path, tiles: int) -> tuple[Path, Path, int]:
    """The shared LOBSTER pair repeated ``tiles`` times, each tile 50 s later than the last.

    The sample spans 49.1 s, so adding 50 s per tile keeps time increasing; the fractional
    part of each time is kept as written, only the whole seconds change.
    """
    rows = LOB_M.read_bytes().split(b"\n")
    book = LOB_B.read_bytes().rstrip(b"\n")
    split = [r.split(b".", 1) for r in rows]
    messages, books = directory / "tiled_message_10.csv", directory / "tiled_orderbook_10.csv"
    with messages.open("wb") as m, books.open("wb") as b:
        for k in range(tiles):
            sep = b"\n" if k else b""
            m.write(sep + b"\n".join(b"%d.%s" % (int(w) + 50 * k, f) for w, f in split))
            b.write(sep + book)
    return messages, books, tiles * len(rows)


def tile_tardis(directory: Path, source: Path) -> Path:
    """A Tardis file repeated ``TARDIS_TILES`` times, each tile later than the last by the
    file's span plus a second (both timestamps shifted, in microseconds)."""
    header, *rows = source.read_bytes().rstrip(b"\n").split(b"\n")
    split = [r.split(b",", 4) for r in rows]
    first, last = int(split[0][3]), int(split[-1][3])
    span = last - first + 1_000_000
    path = directory / f"tiled_{source.name}"
    with path.open("wb") as out:
        out.write(header + b"\n")
        for k in range(TARDIS_TILES):
            shift = k * span
            out.write(b"".join(
                b"%s,%s,%d,%d,%s\n" % (e, s, int(ts) + shift, int(lt) + shift, rest)
                for e, s, ts, lt, rest in split
            ))  # fmt: skip
    return path


def tile_dbn(directory: Path) -> Path:
    """The ESH4 MBO file's records repeated ``MBO_TILES`` times (times shifted by two days a
    tile, after each tile the book starts over from its snapshot), zstd as Databento ships."""
    import numpy as np
    import zstandard

    from engine.app.ingest import databento, databento_fast

    found = databento.inspect(MBO)
    raw = zstandard.ZstdDecompressor().stream_reader(MBO.open("rb")).read()
    dtype = databento_fast.record_dtype(databento.RTYPES[160][1], 0)
    records = np.frombuffer(raw, dtype, offset=found.header).copy()
    day = np.uint64(2 * 86_400 * 10**9)
    tiles = []
    for k in range(MBO_TILES):
        tile = records.copy()
        tile["ts_recv"] += day * np.uint64(k)
        tile["ts_event"] += day * np.uint64(k)
        tiles.append(tile.tobytes())
    path = directory / "tiled.mbo.dbn.zst"
    path.write_bytes(
        zstandard.ZstdCompressor(level=3).compress(raw[: found.header] + b"".join(tiles))
    )
    return path


def repeat_binance(directory: Path, source: Path, repeats: int) -> Path:
    """``source`` repeated, each copy's receive stamps 400 s later (it spans 346 s)."""
    with gzip.open(source) as f:
        lines = f.read().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    split = [line.split(b" ", 1) for line in lines]
    path = directory / f"{source.stem}_x{repeats}.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        for k in range(repeats):
            shift = k * 400 * 10**9
            out.write(b"".join(b"%d %s\n" % (int(s) + shift, j) for s, j in split))
    return path


def _runs(kind: str, *args: Path | str) -> list[dict[str, Any]]:
    """:func:`_measure` ``RUNS`` times, fastest first: the disk's fsync speed varies a lot."""
    return sorted((_measure(kind, *args) for _ in range(RUNS)), key=lambda r: r["seconds"])


def _spread(runs: list[dict[str, Any]], count: str) -> str:
    rates = [r[count] / r["seconds"] for r in runs]
    mid = runs[len(runs) // 2]
    return (
        f"median {mid['seconds']:.3f} s = {mid[count] / mid['seconds']:,.0f} {count}/s "
        f"(runs: {', '.join(f'{x:,.0f}' for x in rates)})"
    )


def _rss(runs: list[dict[str, Any]]) -> str:
    return (
        f"peak RSS {max(r['rss0'] for r in runs):.0f} MB before, "
        f"{max(r['rss'] for r in runs):.0f} MB after"
    )


def _print_binance(name: str, runs: list[dict[str, Any]]) -> None:
    r = runs[len(runs) // 2]
    print(
        f"ingest {name}: {r['lines']:,} lines -> {r['records']:,} records "
        f"({r['quarantined']:,} quarantined): {_spread(runs, 'lines')}, "
        f"{r['records'] / r['seconds']:,.0f} events/s; {_rss(runs)}",
        flush=True,
    )


def _print_lobster(name: str, runs: list[dict[str, Any]]) -> None:
    r = runs[len(runs) // 2]
    print(
        f"ingest {name}: {r['rows']:,} rows -> {r['records']:,} "
        f"records ({r['quarantined']:,} quarantined): {_spread(runs, 'rows')}; {_rss(runs)}",
        flush=True,
    )


GROUPS = ("binance", "book", "lobster", "goog", "tardis", "databento")


def main(only: tuple[str, ...] = GROUPS) -> None:
    """Run every measurement (or the groups in ``only``), each in its own process."""
    rates: dict[str, float] = {}

    def median(name: str, runs: list[dict[str, Any]], count: str) -> None:
        mid = runs[len(runs) // 2]
        rates[name] = round(mid[count] / mid["seconds"])

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "binance" in only:
            for path in (USDM, SPOT, SAMPLES / "binance_usdm_btcusdt_20240808_head3000.gz"):
                runs = _runs("binance", path, tmp)
                _print_binance(path.name, runs)
                median(f"binance {path.name} lines/s", runs, "lines")
            big = Path(_measure("make-binance", tmp)["path"])
            runs = _runs("binance", big, tmp)
            _print_binance(f"{big.name} (USD-M x{USDM_REPEATS})", runs)
            median("binance usdm x10 lines/s", runs, "lines")
            big.unlink()
        if "book" in only:
            for path in (USDM, SPOT):
                r = _measure("book", path, tmp)
                print(
                    f"book {path.name}: {r['records']:,} records in {r['seconds'] * 1e3:.1f} ms = "
                    f"{r['records'] / r['seconds']:,.0f} events/s ({r['tops']:,} tops)",
                    flush=True,
                )
        if "goog" in only:
            for fsync in ("batch", "never"):
                runs = _runs("lobster", GOOG_M, GOOG_B, fsync, tmp)
                _print_lobster(f"LOBSTER GOOG day, fsync {fsync}", runs)
                median(f"lobster goog day fsync {fsync} rows/s", runs, "rows")
        if "lobster" in only:
            runs = _runs("lobster", LOB_M, LOB_B, "batch", tmp)
            _print_lobster("LOBSTER shared pair", runs)
            for tiles in (*LOBSTER_SMALLER, LOBSTER_TILES):
                made = _measure("make-lobster", str(tiles), tmp)
                messages, books, rows = Path(made["messages"]), Path(made["books"]), made["rows"]
                for fsync in ("batch", "never") if tiles == LOBSTER_TILES else ("batch",):
                    name = f"LOBSTER tiled x{tiles} ({rows:,} rows), fsync {fsync}"
                    runs = _runs("lobster", messages, books, fsync, tmp)
                    _print_lobster(name, runs)
                    median(f"lobster x{tiles} fsync {fsync} rows/s", runs, "rows")
        if "tardis" in only:
            paths = [Path(p) for p in _measure("make-tardis", tmp)["paths"]]
            for name, group in (("quotes", paths[:1]), ("quotes + trades", paths)):
                runs = _runs("tardis", *group, tmp)
                _print_lobster(f"Tardis {name} x{TARDIS_TILES}", runs)
                median(f"tardis {name} rows/s", runs, "rows")
        if "databento" in only:
            tiled = Path(_measure("make-databento", tmp)["path"])
            for name, path in (("ESH4 MBO", MBO), (f"ESH4 MBO x{MBO_TILES}", tiled)):
                runs = _runs("databento", path, tmp)
                _print_lobster(f"Databento {name}", runs)
                median(f"databento {name} records/s", runs, "rows")
    print(json.dumps(rates))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2], sys.argv[3:])
    elif sys.argv[1:2] == ["--only"]:
        main(tuple(sys.argv[2].split(",")))
    else:
        main()
