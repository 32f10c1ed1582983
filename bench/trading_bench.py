"""Throughput of the ``trading`` stage alone, on the largest shared file.

Run: ``.venv/bin/python bench/trading_bench.py [FILE]`` (default: the USD-M Binance recording in
``../shared/data/crypto``). The file is ingested into a temporary data directory and the book
and mid stages run once over it in 64 Ki-event slices; their outputs are kept, so only the
trading stage is timed:

1. replay (64 Ki-event slices, best of five) with no decisions: the cost of watching the journal;
2. replay with orders: a decision after every 20th, then every 2nd, book change (directions
   +1, +1, -1, -1, confidences cycling 0.9 / 0.7 / 0.55 / 0.62 / 0.8), small stop and target
   so protective orders fill and cancel often, and limit entries (queue tracking);
3. live: decisions every 2nd book change, one journal event per slice: time per call
   (mean, p50, p99, max).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.events import decode
from engine.events.decisions import DECISION, new_records
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig
from engine.runtime.processor import Slice, StageContext
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from streams.book.stage import BookStage
from streams.mid.processor import MidStage
from streams.trading import TradingStage, trading_defaults

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_FILE = SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz"
CONFIDENCES = (0.9, 0.7, 0.55, 0.62, 0.8)


def _slices(log: EmbeddedLog, session: str, every: int) -> list[Slice]:
    """The journal in 64 Ki-event slices with the book, mid and decision inputs of each."""
    spec = session_opened(log, session).instrument
    config = resolve(SHIPPED, RunConfig(), spec)["stages"]
    book = BookStage(StageContext(session, spec, config["book"], 0))
    mid = MidStage(StageContext(session, spec, config["mid"], 0))
    reader = log.reader(journal_topic(session))
    out, offset, tops_seen = [], reader.start_offset, 0
    while (batch := reader.read(offset, 65536)) is not None:
        if isinstance(batch, FixedBatch):
            piece = Slice(batch.base_offset, batch.next_offset, market=batch.view(MARKET_RECORD))
        else:
            events = tuple(decode(v) for v in batch.values())
            piece = Slice(batch.base_offset, batch.next_offset, control=events)
        (tops,) = book.process(piece)
        (mids,) = mid.process(Slice(piece.start, piece.stop, inputs={"book": tops}))
        assert isinstance(tops, np.ndarray)
        counts = tops_seen + np.arange(1, len(tops) + 1)
        tops_seen += len(tops)
        chosen = counts % every == 0 if every else np.zeros(len(tops), bool)
        decisions = new_records(DECISION, int(chosen.sum()))
        ks = (counts[chosen] // max(every, 1)).tolist()
        decisions["cause"], decisions["ts_event"] = tops["offset"][chosen], tops["ts_event"][chosen]
        decisions["direction"] = [1 if (k // 2) % 2 == 0 else -1 for k in ks]
        decisions["confidence"] = [CONFIDENCES[k % len(CONFIDENCES)] for k in ks]
        inputs = {"book": tops, "mid": mids, "decisions": decisions}
        out.append(Slice(piece.start, piece.stop, piece.market, piece.control, inputs))
        offset = batch.next_offset
    return out


def _single_events(slices: list[Slice]) -> list[Slice]:
    """The same journal one event per slice, each with the inputs it caused."""
    out = []
    for piece in slices:
        for name in ("book", "mid", "decisions"):
            assert isinstance(piece.inputs[name], np.ndarray)
        by_cause = {
            name: piece.inputs[name]["offset" if name == "book" else "cause"].astype(np.int64)
            for name in ("book", "mid", "decisions")
        }
        for o in range(piece.start, piece.stop):
            j = o - piece.start
            inputs = {}
            for name, causes in by_cause.items():
                lo, hi = np.searchsorted(causes, [o, o + 1])
                inputs[name] = piece.inputs[name][lo:hi]  # type: ignore[index]
            market = piece.market[j : j + 1] if piece.market is not None else None
            control = piece.control[j : j + 1] if piece.market is None else ()
            out.append(Slice(o, o + 1, market, control, inputs))
    return out


def _stage(log: EmbeddedLog, session: str, **config: Any) -> TradingStage:
    spec = session_opened(log, session).instrument
    return TradingStage(StageContext(session, spec, {**trading_defaults(spec), **config}, 0))


def _replay(
    log: EmbeddedLog, session: str, slices: list[Slice], config: dict
) -> tuple[float, list]:
    stage = _stage(log, session, **config)
    began = time.perf_counter()
    outputs = [stage.process(piece) for piece in slices]
    return time.perf_counter() - began, outputs


def main() -> None:
    """Ingest the file, then print each measurement on one line."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE
    frequent = {
        "stop_loss_pct": 0.01,
        "take_profit_pct": 0.015,
        "entry_order": "limit",
        "entry_timeout_ms": 3000,
        "starting_equity": 10_000_000.0,
        "max_trades_per_day": 100_000,
    }
    with tempfile.TemporaryDirectory() as tmp:
        result = CliRunner().invoke(
            app, ["--data", tmp, "ingest", "binance", str(source), "--session", "s", "--quiet"]
        )
        assert result.exit_code == 0, result.output
        log = EmbeddedLog(Path(tmp))
        quiet, some, busy = _slices(log, "s", 0), _slices(log, "s", 20), _slices(log, "s", 2)
        events = quiet[-1].stop - quiet[0].start
        print(f"journal of {source.name}: {events:,} events")
        _replay(log, "s", busy, frequent)  # warm-up: numba loads its cached compiles
        cases = (
            ("no orders", quiet, {}),
            ("a decision every 20th book change", some, frequent),
            ("a decision every 2nd book change", busy, frequent),
        )
        for name, slices, config in cases:
            seconds, outputs = min(
                (_replay(log, "s", slices, config) for _ in range(3)), key=lambda r: r[0]
            )
            counts = [sum(len(o[k]) for o in outputs) for k in range(4)]
            decisions = sum(len(s.inputs["decisions"]) for s in slices)  # type: ignore[arg-type]
            print(
                f"replay, {name}: {events / seconds:,.0f} journal events/s "
                f"({seconds / events * 1e9:.0f} ns/event, {seconds * 1e3:.1f} ms); "
                f"{decisions:,} decisions -> risk {counts[0]:,}, orders {counts[1]:,}, "
                f"executions {counts[2]:,}, portfolio {counts[3]:,}"
            )
        singles = _single_events(busy)
        stage = _stage(log, "s", **frequent)
        times = np.empty(len(singles))
        for k, piece in enumerate(singles):
            began = time.perf_counter()
            stage.process(piece)
            times[k] = time.perf_counter() - began
        us = times * 1e6
        p50, p99 = np.percentile(us, [50, 99])
        print(
            f"live, a decision every 2nd book change, one event per call: mean "
            f"{us.mean():.1f} us, p50 {p50:.1f} us, p99 {p99:.1f} us, max {us.max():.0f} us "
            f"({len(singles) / times.sum():,.0f} events/s)"
        )


if __name__ == "__main__":
    main()
