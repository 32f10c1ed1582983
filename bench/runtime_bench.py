"""Runtime throughput, hashing cost and resume time on the largest shared file.

Run: ``.venv/bin/python bench/runtime_bench.py [FILE]`` (default: the USD-M Binance recording in
``../shared/data/crypto``). The file is ingested into a temporary data directory, then:

1. a 3-stage pipeline of trivial processors in replay (64 Ki-event slices): the runtime's own
   cost per journal event;
2. the ``mid`` pipeline (book, mid) in replay, and the share of its run time spent hashing
   outputs and writing the manifest;
3. the same one event at a time (live mode), per-event cost;
4. resuming from the last snapshot of the ``mid`` run: time to load the snapshot, restore
   every processor, cut the outputs back and re-hash their short block.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.events.book import BOOK_MID
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.runtime import (
    Pipeline,
    RunConfig,
    Runner,
    Stage,
    Topology,
    execute,
)
from engine.runtime.hashing import topic_chain
from engine.runtime.manifest import read_manifest, run_dir, write_manifest
from engine.runtime.processor import Output, Port, Slice, StageContext
from engine.runtime.runner import latest_snapshot
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_FILE = SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz"


class Trivial:
    """Counts the events it sees and emits nothing: the pipeline's cost is the runtime's."""

    def __init__(self, context: StageContext) -> None:
        self.seen = 0

    def process(self, piece: Slice) -> tuple[Output, ...]:
        self.seen += len(piece)
        return ([],)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.seen)

    def restore(self, state: bytes) -> None:
        self.seen = msgspec.msgpack.decode(state)

    def inspect(self) -> dict[str, Any]:
        return {"seen": self.seen}


PIPELINES = SHIPPED.extended(
    Pipeline(
        "bench-trivial",
        tuple(Stage(s, Trivial, (Port(f"{s}-out", BOOK_MID),)) for s in ("a", "b", "c")),
    )
)


def _timed_run(log: EmbeddedLog, session: str, config: RunConfig, batch: int) -> tuple[float, int]:
    opened = session_opened(log, session)
    resolved = resolve(PIPELINES, config, opened.instrument)
    topology = Topology(PIPELINES.get(config.pipeline), resolved, session, opened.instrument)
    with tempfile.TemporaryDirectory() as scratch:
        runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), "bench", topology)
        runner.begin()
        began = time.perf_counter()
        end = runner.advance(batch=batch)
        runner.close()
        return time.perf_counter() - began, end


def main() -> None:
    """Ingest the file, then print each measurement on one line."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        result = CliRunner().invoke(
            app, ["--data", tmp, "ingest", "binance", str(source), "--session", "s", "--quiet"]
        )
        assert result.exit_code == 0, result.output
        log = EmbeddedLog(data)
        events = log.reader(journal_topic("s")).end_offset
        print(f"journal of {source.name}: {events:,} events")

        _timed_run(log, "s", RunConfig(pipeline="bench-trivial"), 65536)  # warm-up
        seconds, _ = min(
            (_timed_run(log, "s", RunConfig(pipeline="bench-trivial"), 65536) for _ in range(3)),
            key=lambda r: r[0],
        )
        print(
            f"3 trivial stages, replay: {events / seconds:,.0f} events/s "
            f"({seconds / events * 1e6:.3f} us per journal event)"
        )

        _timed_run(
            log, "s", RunConfig(pipeline="mid"), 65536
        )  # warm-up: numba loads its cached compiles
        outcome = execute(
            log,
            "s",
            RunConfig(pipeline="mid", snapshot_every=250_000),
            run_id="d1",
            pipelines=PIPELINES,
        )
        m = outcome.manifest
        began = time.perf_counter()
        for o in m.outputs:
            topic_chain(log.reader(o.topic))
        hashing = time.perf_counter() - began
        began = time.perf_counter()
        write_manifest(data, read_manifest(data, "d1"))
        manifest_s = time.perf_counter() - began
        print(
            f"mid pipeline (book, mid), replay: {m.events_per_second:,.0f} events/s in "
            f"{m.wall_seconds:.2f} s; outputs {sum(o.count for o in m.outputs):,} events"
        )
        print(
            f"hashing all outputs {hashing * 1e3:.0f} ms + manifest {manifest_s * 1e3:.1f} ms = "
            f"{(hashing + manifest_s) / m.wall_seconds:.1%} of the run"
        )

        live_events = min(events, 200_000)
        seconds, _ = _timed_live(log, live_events)
        print(
            f"mid pipeline, live (one event per slice, first {live_events:,} events): "
            f"{live_events / seconds:,.0f} events/s ({seconds / live_events * 1e6:.1f} us/event)"
        )

        opened = session_opened(log, "s")
        directory = run_dir(data, "d1")
        began = time.perf_counter()
        snapshot = latest_snapshot(directory / "snapshots")
        assert snapshot is not None
        topology = Topology(PIPELINES.get("mid"), dict(m.config), "s", opened.instrument)
        runner = Runner(log, journal_topic("s"), log, "d1", topology, directory / "snapshots")
        runner.resume_from(snapshot)
        resume_s = time.perf_counter() - began
        runner.close()
        print(
            f"resume from the snapshot at journal offset {snapshot.journal_offset:,} "
            f"(state {sum(len(s) for s in snapshot.states.values()):,} bytes): "
            f"{resume_s * 1e3:.0f} ms"
        )


def _timed_live(log: EmbeddedLog, n: int) -> tuple[float, int]:
    opened = session_opened(log, "s")
    resolved = resolve(PIPELINES, RunConfig(pipeline="mid"), opened.instrument)
    topology = Topology(PIPELINES.get("mid"), resolved, "s", opened.instrument)
    with tempfile.TemporaryDirectory() as scratch:
        runner = Runner(log, journal_topic("s"), EmbeddedLog(scratch), "live", topology)
        runner.begin()
        began = time.perf_counter()
        end = runner.advance(stop=n, batch=1)
        runner.close()
        return time.perf_counter() - began, end


if __name__ == "__main__":
    main()
