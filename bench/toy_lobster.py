"""A benchmark other engines can run too: LOBSTER tiled 400 times through a toy strategy.

Run: ``.venv/bin/python bench/toy_lobster.py [--tiles 400] [--repeat 3] [--fsync batch|never]
[--levels 10]`` (docs/toy-benchmark.md says what each number covers).

The shared LOBSTER AAPL sample (999 messages, 49.08 s) is repeated 400 times back to back, each
copy shifted in time by the sample's span plus 1 ms (399,600 rows), then:

1. ingested with ``tape ingest lobster`` (parse, convert, write the journal);
2. run (``--repeat`` times; the best is reported) through the ``toy`` pipeline on the same
   runtime as every other pipeline: journal -> ``book`` (-> ``mid``) -> ``toy`` strategy
   (``streams/toy``: on every top-of-book change, a 30 s time-decayed EMA of mid and the L1
   imbalance; a 100-share market order when mid is more than 1 bp away from the EMA with the
   imbalance agreeing, at most one per 60 s of event time, position capped at +/-500) ->
   ``orders`` -> simulated venue ``execution`` -> ``executions``.

Prints input rows/s for the ingest, for the pipeline over the journal and for both together,
journal events/s, orders sent and fills, and the peak RSS of this process. Numba loads its
compiles in a small warm-up run before anything is timed.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.events import decode
from engine.events.trading import OrderFilled
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, execute
from engine.runtime.manifest import output_topic

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "lobster"
MESSAGES = SHARED / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
BOOKS = SHARED / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
NS = 1_000_000_000


def _ns(seconds: bytes) -> int:
    whole, _, fraction = seconds.partition(b".")
    return int(whole) * NS + int(fraction.ljust(9, b"0")[:9] or b"0")


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def tile(
    directory: Path, tiles: int, messages: Path = MESSAGES, books: Path = BOOKS
) -> tuple[Path, Path, int]:
    """The LOBSTER pair ``messages``/``books`` (plain or gzipped) repeated ``tiles`` times into
    ``directory``, copy k shifted by k * (span + 1 ms), exactly in ns; (messages, books, rows)."""
    rows = [r.split(b",", 1) for r in _read(messages).rstrip(b"\n").split(b"\n")]
    times = [_ns(t) for t, _ in rows]
    shift = times[-1] - times[0] + 1_000_000
    book = _read(books).rstrip(b"\n")
    out_messages = directory / "toy_message_10.csv"
    out_books = directory / "toy_orderbook_10.csv"
    with out_messages.open("wb") as m, out_books.open("wb") as b:
        for k in range(tiles):
            lines = (
                b"%d.%09d,%s" % (*divmod(t + k * shift, NS), rest)
                for t, (_, rest) in zip(times, rows, strict=True)
            )
            m.write((b"\n" if k else b"") + b"\n".join(lines))
            b.write((b"\n" if k else b"") + book)
    return out_messages, out_books, tiles * len(rows)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Tile, ingest, run the toy pipeline; print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="pipeline runs (best is reported)")
    parser.add_argument("--fsync", default="batch", help="ingest durability: batch or never")
    parser.add_argument("--levels", type=int, default=10, help="levels of the book stage's tops")
    args = parser.parse_args()
    config = RunConfig(pipeline="toy", snapshot_every=0, stages={"book": {"levels": args.levels}})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        messages, books, rows = tile(data, args.tiles)
        _warm_up(data, config)
        began = time.perf_counter()
        result = CliRunner().invoke(
            app,
            ["--data", tmp, "--fsync", args.fsync, *_ingest_args(messages, books, "toy")],
        )
        ingest_s = time.perf_counter() - began
        assert result.exit_code == 0, result.output
        log = EmbeddedLog(data)
        events = log.reader(journal_topic("toy")).end_offset
        runs = [
            execute(log, "toy", config, run_id=f"toy{k}", pipelines=SHIPPED)
            for k in range(args.repeat)
        ]
        seconds = [r.manifest.wall_seconds for r in runs]
        run_s = min(seconds)
        counts = {o.port: o.count for o in runs[0].manifest.outputs}
        hashes = {r.manifest.outputs_hash for r in runs}
        assert len(hashes) == 1, "the runs of one journal must give identical outputs"
        print(
            f"input: LOBSTER AAPL sample x{args.tiles} = {rows:,} rows -> {events:,} journal events"
        )
        print(f"ingest (--fsync {args.fsync}): {ingest_s:.3f} s = {rows / ingest_s:,.0f} rows/s")
        print(
            f"pipeline (book[{args.levels}] -> mid -> toy -> execution), best of {len(runs)}: "
            f"{run_s:.3f} s = {rows / run_s:,.0f} rows/s, {events / run_s:,.0f} journal events/s "
            f"(all runs: {', '.join(f'{s:.3f}' for s in seconds)} s)"
        )
        total = ingest_s + run_s
        print(f"ingest + pipeline: {total:.3f} s = {rows / total:,.0f} rows/s")
        print(
            f"orders sent {counts.get('orders', 0):,}, fills {_fills(log, 'toy0'):,} "
            f"({counts.get('executions', 0):,} venue reports); "
            f"peak RSS {_peak_rss_mb():,.0f} MB"
        )


def _ingest_args(messages: Path, books: Path, session: str) -> list[str]:
    """``tape ingest lobster`` of the tiled pair as session ``session``."""
    return [
        "ingest", "lobster", str(messages), str(books),
        "--symbol", "AAPL", "--date", "2012-06-21", "--session", session, "--quiet",
    ]  # fmt: skip


def _fills(log: EmbeddedLog, run_id: str) -> int:
    """How many ``executions.order_filled`` the run wrote."""
    reader = log.reader(output_topic(run_id, "executions"))
    found, offset = 0, reader.start_offset
    while (batch := reader.read(offset, 1 << 16)) is not None:
        found += sum(isinstance(decode(v), OrderFilled) for v in batch.values())
        offset = batch.next_offset
    return found


def _warm_up(data: Path, config: RunConfig) -> None:
    """One small run first, so numba loads its cached compiles outside the timing."""
    warm = data / "warm"
    warm.mkdir()
    messages, books, _ = tile(warm, 2)
    CliRunner().invoke(
        app,
        ["--data", str(warm), *_ingest_args(messages, books, "w")],
    )
    execute(EmbeddedLog(warm), "w", config, run_id="w", pipelines=SHIPPED)


if __name__ == "__main__":
    main()
