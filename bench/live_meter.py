"""What ``tape live --metrics-port`` costs per one-record append: the live meter on the hot path.

Run: ``.venv/bin/python bench/live_meter.py [--events N] [--pipeline P] [--repeats R]``
(defaults: 20,000 market records of the bundled Binance spot day, the ``default`` pipeline, 3).

The bundled spot day is ingested once; then, per pass, a ``LiveSession`` (the paper broker, as
``tape live`` runs it) is started on a fresh data directory and its first N market records are
appended to its journal **one record per append**, each restamped with the wall clock as its
receive time, exactly as the feed adapter hands a parsed frame to the journal
(``LiveJournal.publish``): the append, the in-memory hand-off, the pipeline step, the order
gateway. The socket and the feed's parsing are left out (they are the same with or without
metrics). Every 0.25 s of wall time the meter folds, as the session's metrics task does;
the fold's time is part of the pass.

Per repeat, two passes on the same records, in alternating order: ``off`` (no metrics) and
``on`` (``LiveMetrics`` fed by ``LiveMeter``, its calls timed from the inside). Reported:

* ``meter_us_per_append``: the meter's own time per append, measured inside it: each
  ``stepped`` / ``output`` / ``handed`` call, each fold, and the two ``perf_counter_ns`` reads
  the session adds around a step, over the number of appends (the timer's own cost, measured,
  is subtracted);
* ``fold_us_per_append``: the folds' share of it;
* ``append_us`` ``off`` / ``on``: wall time per append of each pass, and their difference
  (noisy on a shared machine: the pipeline's own time varies more than the meter costs).

The last line printed is one JSON object (medians over the repeats, and each repeat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.feeds.binance import FeedConfig
from engine.app.ingest import binance
from engine.app.live.meter import LiveMeter, LiveMetrics
from engine.app.live.session import LiveConfig, LiveSession
from engine.app.pipelines import SHIPPED
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic
from engine.runtime import RunConfig

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "replays" / "samples" / "binance_spot_btcusdt_20240808.gz"
FOLD_EVERY_NS = 250_000_000


class TimedMeter(LiveMeter):
    """The live meter with the time spent in each of its calls added up (ns)."""

    spent = 0
    folding = 0
    calls = 0
    steps = 0

    def stepped(self, piece: Any, took_ns: int) -> None:
        began = time.perf_counter_ns()
        super().stepped(piece, took_ns)
        self.spent += time.perf_counter_ns() - began
        self.calls += 1
        self.steps += 1

    def output(self, output: Any, piece: Any) -> None:
        began = time.perf_counter_ns()
        super().output(output, piece)
        self.spent += time.perf_counter_ns() - began
        self.calls += 1

    def handed(self, at: int, cause: int) -> None:
        began = time.perf_counter_ns()
        super().handed(at, cause)
        self.spent += time.perf_counter_ns() - began
        self.calls += 1

    def fold(self) -> None:
        began = time.perf_counter_ns()
        super().fold()
        took = time.perf_counter_ns() - began
        self.spent += took
        self.folding += took


def _records(n: int) -> np.ndarray[Any, Any]:
    """The first ``n`` market records of the spot day, as its ingest journals them."""
    with tempfile.TemporaryDirectory() as tmp:
        result = CliRunner().invoke(
            app, ["--data", tmp, "ingest", "binance", str(RECORDING), "--session", "src"]
        )
        assert result.exit_code == 0, result.output
        reader = EmbeddedLog(Path(tmp)).reader(journal_topic("src"))
        parts = [
            b.view(MARKET_RECORD).copy() for b in reader.batches() if isinstance(b, FixedBatch)
        ]
    return np.concatenate(parts)[:n]


def _timer_ns() -> float:
    """What one ``perf_counter_ns`` read costs (ns), to take the timing's cost out."""
    reads = 200_000
    began = time.perf_counter_ns()
    for _ in range(reads):
        time.perf_counter_ns()
    return (time.perf_counter_ns() - began) / reads


def _pass(records: np.ndarray[Any, Any], pipeline: str, metered: bool) -> dict[str, Any]:
    """One pass, inside an event loop as ``tape live`` runs (the session schedules its
    drains on it); the appends never yield to it, as frames already read never do."""
    return asyncio.run(_appends(records, pipeline, metered))


async def _appends(records: np.ndarray[Any, Any], pipeline: str, metered: bool) -> dict[str, Any]:
    market, symbol = binance.detect(RECORDING)
    spec = binance.instrument(market, symbol)
    with tempfile.TemporaryDirectory() as tmp:
        log = EmbeddedLog(tmp, FsyncPolicy(FsyncMode.NEVER))
        feed = FeedConfig(symbol, market, "ws://127.0.0.1:9", "http://127.0.0.1:9")
        config = LiveConfig(
            "bench", feed, spec, SHIPPED, RunConfig(pipeline=pipeline), tick_ms=0,
            metrics=LiveMetrics() if metered else None,
        )  # fmt: skip
        session = LiveSession(log, config)
        started = session._start()  # what run() does before following the feed
        meter = None
        if session.meter is not None:
            meter = TimedMeter(config.metrics, "bench", session.clock.now, lambda: 0)  # type: ignore[arg-type]
            assert session.feed is not None
            meter.watch(session.feed.stats)
            session.meter = meter
        publish = session.journal.publish
        folded = time.perf_counter_ns()
        began = time.perf_counter_ns()
        for record in records:
            one = record.reshape(1).copy()
            one["ts_recv"] = time.time_ns()  # as the feed stamps a frame read off the socket
            publish([one])
            if meter is not None and time.perf_counter_ns() - folded >= FOLD_EVERY_NS:
                meter.fold()
                folded = time.perf_counter_ns()
        seconds = (time.perf_counter_ns() - began) / 1e9
        session._finish(started)
        out: dict[str, Any] = {"append_us": seconds / len(records) * 1e6}
        if meter is not None:
            out |= {"spent_ns": meter.spent, "folding_ns": meter.folding, "calls": meter.calls,
                    "steps": meter.steps}  # fmt: skip
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--pipeline", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    records = _records(args.events)
    n = len(records)
    timer = _timer_ns()
    _pass(records[:2000], args.pipeline, True)  # warm: numba caches, imports
    repeats = []
    for k in range(args.repeats):
        order = (False, True) if k % 2 == 0 else (True, False)
        got = {metered: _pass(records, args.pipeline, metered) for metered in order}
        on, off = got[True], got[False]
        # a timed call's interval holds one timer read of its own; the session's two reads
        # around each step are the meter's (they happen only when metrics are on)
        meter_ns = on["spent_ns"] - on["calls"] * timer + 2 * on["steps"] * timer
        repeat = {
            "meter_us_per_append": round(meter_ns / n / 1e3, 2),
            "fold_us_per_append": round(on["folding_ns"] / n / 1e3, 2),
            "append_us_off": round(off["append_us"], 1),
            "append_us_on": round(on["append_us"], 1),
            "difference_us": round(on["append_us"] - off["append_us"], 1),
        }
        repeats.append(repeat)
        print(json.dumps(repeat), flush=True)
    medians = {key: round(statistics.median(r[key] for r in repeats), 2) for key in repeats[0]}
    out = {
        "bench": "live_meter",
        "pipeline": args.pipeline,
        "appends": n,
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "timer_ns": round(timer, 1),
        "median": medians,
        "repeats": repeats,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
