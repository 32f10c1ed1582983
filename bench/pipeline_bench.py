"""The whole decision pipeline: replay throughput, live latency to a decision, peak memory.

Run: ``.venv/bin/python bench/pipeline_bench.py [FILE] [--until 60%]`` (default: the USD-M
Binance recording in ``../shared/data/crypto``, the largest shared file). In a temporary data
directory the file is ingested and a model bundle trained on its first part (``tape train
--until``); then, each in a fresh child process so peak memory is the run's own:

1. **replay**: the ``default`` pipeline (book, mid, features, labels, models, agents,
   consensus, trading) over the whole journal in 64 Ki-event slices with the bundle, as
   ``tape run`` does it (outputs written and hashed): journal events/s, time per stage,
   peak RSS;
2. **live**: the same, one journal event per slice, timing each slice from reading the event
   to its outputs written; the latency of every market event that caused a decision is kept
   (p50 / p99 / max), and of every event.

Numba's compiled loops are loaded from its cache by a warm-up run before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelStore
from engine.runtime import RunConfig, Runner, Topology
from engine.runtime.processor import Output, Processor, Slice
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_FILE = SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz"
LIVE_EVENTS = 200_000


class Timed:
    """A processor wrapper that adds up the time spent in ``process``."""

    def __init__(self, inner: Processor) -> None:
        self.inner, self.seconds = inner, 0.0

    def process(self, piece: Slice) -> tuple[Output, ...]:
        began = time.perf_counter()
        out = self.inner.process(piece)
        self.seconds += time.perf_counter() - began
        return out

    def snapshot(self) -> bytes:
        return self.inner.snapshot()

    def restore(self, state: bytes) -> None:
        self.inner.restore(state)

    def inspect(self) -> dict[str, Any]:
        return self.inner.inspect()


def _runner(data: Path, bundle: str, scratch: str) -> tuple[Runner, Topology]:
    log = EmbeddedLog(data)
    opened = session_opened(log, "s")
    config = RunConfig(stages={"models": {"bundle": bundle}})
    resolved = resolve(SHIPPED, config, opened.instrument)
    store = ModelStore(data / "models")
    topology = Topology(SHIPPED.get("default"), resolved, "s", opened.instrument, store)
    topology.stages = [(stage, Timed(p)) for stage, p in topology.stages]
    runner = Runner(log, journal_topic("s"), EmbeddedLog(scratch), "bench", topology)
    runner.begin()
    return runner, topology


def replay(data: Path, bundle: str) -> dict[str, Any]:
    """One timed replay; run in a child process."""
    with tempfile.TemporaryDirectory() as scratch:
        runner, _ = _runner(data, bundle, scratch)  # warm-up: numba's cache, imports
        runner.advance()
        runner.close()
    with tempfile.TemporaryDirectory() as scratch:
        runner, topology = _runner(data, bundle, scratch)
        began = time.perf_counter()
        end = runner.advance()
        runner.close()
        seconds = time.perf_counter() - began
    stages = {s.id: p.seconds for s, p in topology.stages}  # type: ignore[attr-defined]
    counts = {s.port: s.count for s in runner.summaries()}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"events": end, "seconds": seconds, "stages": stages, "counts": counts, "rss": rss}


def live(data: Path, bundle: str) -> dict[str, Any]:
    """One event per slice over the first LIVE_EVENTS events; run in a child process."""
    with tempfile.TemporaryDirectory() as scratch:
        runner, _ = _runner(data, bundle, scratch)
        runner.advance(stop=5_000, batch=1)  # warm-up
        runner.close()
    with tempfile.TemporaryDirectory() as scratch:
        runner, topology = _runner(data, bundle, scratch)
        timed: list[tuple[str, Timed]] = [(s.id, p) for s, p in topology.stages]  # type: ignore[misc]
        decisions = runner.topics.topics["decisions"].hasher
        stop = min(LIVE_EVENTS, runner.reader.end_offset)
        every = np.zeros(stop, np.float64)
        caused = np.zeros(stop, bool)
        per_stage = np.zeros(len(timed), np.float64)
        for i in range(stop):
            before = decisions.total
            spent = [p.seconds for _, p in timed]
            began = time.perf_counter()
            runner.advance(stop=i + 1, batch=1)
            every[i] = time.perf_counter() - began
            caused[i] = decisions.total > before
            if caused[i]:
                per_stage += [p.seconds - s for (_, p), s in zip(timed, spent, strict=True)]
        runner.close()
    to_decision = every[caused] * 1e6
    all_us = every * 1e6
    return {
        "events": stop,
        "decisions": int(caused.sum()),
        "decision_us": [float(np.percentile(to_decision, q)) for q in (50, 99)]
        + [float(to_decision.max())],
        "every_us": [float(np.percentile(all_us, q)) for q in (50, 99)] + [float(all_us.max())],
        "decision_stage_us": {
            name: float(t / max(1, caused.sum()) * 1e6)
            for (name, _), t in zip(timed, per_stage, strict=True)
        },
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(kind: str, data: Path, bundle: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(data), bundle],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _prepare(data: Path, source: Path, until: str) -> str:
    runner = CliRunner()
    result = runner.invoke(
        app, ["--data", str(data), "ingest", "binance", str(source), "--session", "s", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["--data", str(data), "train", "s", "--until", until, "--quiet"])
    assert result.exit_code == 0, result.output
    return _bundle_of(result.output)


def _bundle_of(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("bundle "):
            return line.split()[1]
    raise SystemExit(f"tape train printed no bundle:\n{output}")


def main() -> None:
    """Prepare the data, then print the replay and live measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--until", default="60%")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, data, bundle = args.child
        print(json.dumps((replay if kind == "replay" else live)(Path(data), bundle)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        bundle = _prepare(data, args.file, args.until)
        r = _child("replay", data, bundle)
        print(f"{args.file.name}: {r['events']:,} journal events; bundle {bundle[:12]}")
        print(
            f"replay: {r['events'] / r['seconds']:,.0f} journal events/s "
            f"({r['seconds']:.3f} s); peak RSS {r['rss']:,.0f} MB"
        )
        for stage, seconds in r["stages"].items():
            print(f"  {stage:<10} {seconds:7.3f} s  {seconds / r['seconds']:6.1%}")
        print("  outputs: " + ", ".join(f"{p} {n:,}" for p, n in r["counts"].items()))
        v = _child("live", data, bundle)
        d, e = v["decision_us"], v["every_us"]
        print(
            f"live, one event per slice, first {v['events']:,} events: market event -> "
            f"decision ({v['decisions']:,}) p50 {d[0]:.0f} us, p99 {d[1]:.0f} us, max "
            f"{d[2]:.0f} us; every event p50 {e[0]:.0f} us, p99 {e[1]:.0f} us, max {e[2]:.0f} us;"
            f" peak RSS {v['rss']:,.0f} MB"
        )
        print(
            "  mean per stage on events that caused a decision: "
            + ", ".join(f"{k} {us:.0f} us" for k, us in v["decision_stage_us"].items())
        )


if __name__ == "__main__":
    main()
