"""The comparable benchmark: a LOBSTER day through the toy strategy, beside the peers.

Run: ``.venv/bin/python bench/toy_lobster.py [--ticker GOOG|AAPL] [--tiles N] [--repeat 5]
[--peers /tmp/peers/bin/python]`` (docs/toy-benchmark.md says what each number covers).

Input: the shared LOBSTER pair of ``--ticker`` (default GOOG, the full day, untiled; AAPL is a
999-row sample, run it ``--tiles 400``), tiled as the peers' harness tiles: copy k shifted by
k * (span + 1 ms), exactly in ns. Then:

1. ``tape ingest lobster`` (parse, convert, write the journal), timed once;
2. the ``toy`` pipeline (journal -> ``book`` -> ``mid`` -> ``toy`` strategy -> ``orders`` ->
   simulated venue -> ``executions``, outputs written and hashed) on the same runtime as every
   other pipeline, ``--repeat`` times; with ``--peers PYTHON`` every round also runs the two
   peer scripts of ``../shared/peers`` (hftbacktest, NautilusTrader) with that interpreter on
   the same input, so each ratio compares runs of the same minute.

Rows/s is LOBSTER rows divided by the replay time: ours the run's ``wall_seconds`` (reading the
journal, every stage, writing and hashing the outputs, the final flush), the peers' their
``run_s`` (their replay, without loading and converting the CSVs). Medians over the rounds;
the ratios are medians of the per-round ratios. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

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


PEERS = {"hftbacktest": "hftbacktest_lobster.py", "nautilus_trader": "nautilus_lobster.py"}


def pair(ticker: str) -> tuple[Path, Path]:
    """The shared LOBSTER (messages, orderbook) files of ``ticker``, plain or gzipped."""
    found = sorted(SHARED.glob(f"{ticker}_*_message_10.csv*"))
    if not found:
        raise SystemExit(f"no LOBSTER pair for {ticker} in {SHARED}")
    return found[0], Path(str(found[0]).replace("_message_", "_orderbook_"))


def _peer(python: str, name: str, ticker: str, tiles: int) -> dict[str, Any]:
    """One run of a peer script; its JSON line."""
    script = SHARED.parents[1] / "peers" / PEERS[name]
    args = [python, str(script), "--ticker", ticker, "--repeat", str(tiles)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    """Tile, ingest, run ours (and the peers) round by round; print each, then the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticker", default="GOOG", help="GOOG (full day) or AAPL (sample)")
    parser.add_argument("--tiles", type=int, default=1, help="copies back to back (AAPL: 400)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (medians are reported)")
    parser.add_argument("--peers", metavar="PYTHON", help="interpreter of the peers' venv")
    parser.add_argument("--fsync", default="batch", help="ingest durability: batch or never")
    parser.add_argument("--levels", type=int, default=10, help="levels of the book stage's tops")
    args = parser.parse_args()
    config = RunConfig(pipeline="toy", snapshot_every=0, stages={"book": {"levels": args.levels}})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        messages, books = pair(args.ticker)
        rows = _rows(messages)
        if args.tiles > 1:
            messages, books, rows = tile(data, args.tiles, messages, books)
        _warm_up(data, config)
        began = time.perf_counter()
        ingest = [*_ingest_args(messages, books, "toy", args.ticker)]
        result = CliRunner().invoke(app, ["--data", tmp, "--fsync", args.fsync, *ingest])
        ingest_s = time.perf_counter() - began
        assert result.exit_code == 0, result.output
        log = EmbeddedLog(data)
        events = log.reader(journal_topic("toy")).end_offset
        print(f"input: LOBSTER {args.ticker} x{args.tiles} = {rows:,} rows -> {events:,} journal "
              f"events; ingest (--fsync {args.fsync}) {ingest_s:.3f} s = "
              f"{rows / ingest_s:,.0f} rows/s")  # fmt: skip
        ours: list[float] = []
        peers: dict[str, list[dict[str, Any]]] = {name: [] for name in PEERS} if args.peers else {}
        hashes = set()
        for k in range(args.repeat):
            run = execute(log, "toy", config, run_id=f"toy{k}", pipelines=SHIPPED)
            hashes.add(run.manifest.outputs_hash)
            ours.append(rows / run.manifest.wall_seconds)
            line = f"round {k + 1}: ours {ours[-1]:,.0f} rows/s"
            for name in peers:
                peers[name].append(_peer(args.peers, name, args.ticker, args.tiles))
                line += f", {name} {peers[name][-1]['lobster_rows_per_s']:,.0f}"
            print(line, flush=True)
        assert len(hashes) == 1, "the runs of one journal must give identical outputs"
        counts = {o.port: o.count for o in run.manifest.outputs}
        summary: dict[str, Any] = {
            "ticker": args.ticker,
            "tiles": args.tiles,
            "rows": rows,
            "journal_events": events,
            "ingest_rows_per_s": round(rows / ingest_s),
            "rows_per_s": round(statistics.median(ours)),
            "rounds_rows_per_s": [round(x) for x in ours],
            "orders": counts.get("orders", 0),
            "fills": _fills(log, "toy0"),
            "venue_reports": counts.get("executions", 0),
            "outputs_hash": hashes.pop(),
            "peak_rss_mb": round(_peak_rss_mb()),
        }
        for name, runs in peers.items():
            rates = [r["lobster_rows_per_s"] for r in runs]
            summary[name] = {
                "version": runs[0]["version"],
                "rows_per_s": round(statistics.median(rates)),
                "rounds_rows_per_s": [round(x) for x in rates],
                "orders": runs[0]["orders"],
                "fills": runs[0]["fills"],
                "peak_rss_mb": runs[0]["peak_rss_mb"],
            }
            ratios = [o / p for o, p in zip(ours, rates, strict=True)]
            summary[f"ratio_to_{name}"] = round(statistics.median(ratios), 3)
        print(json.dumps(summary))


def _rows(messages: Path) -> int:
    return _read(messages).rstrip(b"\n").count(b"\n") + 1


def _ingest_args(messages: Path, books: Path, session: str, symbol: str) -> list[str]:
    """``tape ingest lobster`` of the pair as session ``session``."""
    return [
        "ingest", "lobster", str(messages), str(books),
        "--symbol", symbol, "--date", "2012-06-21", "--session", session, "--quiet",
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
    CliRunner().invoke(app, ["--data", str(warm), *_ingest_args(messages, books, "w", "AAPL")])
    execute(EmbeddedLog(warm), "w", config, run_id="w", pipelines=SHIPPED)


if __name__ == "__main__":
    main()
