"""The whole decision pipeline: replay throughput, live latency to a decision, peak memory.

Run: ``.venv/bin/python bench/pipeline_bench.py --ticker GOOG [--tiles 4] [--live-events N]``
(the full GOOG LOBSTER day of ``../shared/data/lobster``, tiled as the peers' harness tiles),
or ``.venv/bin/python bench/pipeline_bench.py [FILE]`` (a Binance recording, default the USD-M
file in ``../shared/data/crypto``). In a temporary data directory the input is ingested and a
model bundle trained on its first 60 % (``tape train --until``); then, each in a fresh child
process so peak memory is the run's own:

1. **replay**: the ``default`` pipeline (book, mid, features, labels, models, agents,
   consensus, trading) over the whole journal in 64 Ki-event slices with the bundle, as
   ``tape run`` does it (outputs written and hashed): journal events/s, time per stage,
   peak RSS;
2. **live** (``--live-events``, default 20,000; 0 skips it): the same, one journal event per
   slice, timing each slice from reading the event to its outputs written; the latency of
   every market event that caused a decision is kept (p50 / p99 / max), and of every event.

Numba's compiled loops are loaded from its cache by a warm-up run before anything is timed.
The last line is one JSON object; its ``chains`` are every output port's hash chain and
``outputs_hash`` one sha256 over them (a speed-up must leave it unchanged). ``--data DIR`` keeps
the ingested input and the bundle in DIR and reuses them on the next run, so that two trees of
the code can be compared on the very same bundle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.toy_lobster import pair, tile

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WARM_UP = 50_000
"""Journal events the warm-up replays (every stage has run, numba's cache is loaded)."""
DEFAULT_FILE = SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz"


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
        runner.advance(stop=WARM_UP)
        runner.close()
    with tempfile.TemporaryDirectory() as scratch:
        runner, topology = _runner(data, bundle, scratch)
        began = time.perf_counter()
        end = runner.advance()
        runner.close()
        seconds = time.perf_counter() - began
    stages = {s.id: p.seconds for s, p in topology.stages}  # type: ignore[attr-defined]
    counts = {s.port: s.count for s in runner.summaries()}
    chains = {s.port: s.chain for s in runner.summaries()}
    return {
        "events": end,
        "seconds": seconds,
        "stages": stages,
        "counts": counts,
        "chains": chains,
        "rss": _peak(),
    }


def live(data: Path, bundle: str, events: int) -> dict[str, Any]:
    """One event per slice over the first ``events`` events; run in a child process."""
    with tempfile.TemporaryDirectory() as scratch:
        runner, _ = _runner(data, bundle, scratch)
        runner.advance(stop=5_000, batch=1)  # warm-up
        runner.close()
    with tempfile.TemporaryDirectory() as scratch:
        runner, topology = _runner(data, bundle, scratch)
        timed: list[tuple[str, Timed]] = [(s.id, p) for s, p in topology.stages]  # type: ignore[misc]
        decisions = runner.topics.topics["decisions"].hasher
        stop = min(events, runner.reader.end_offset)
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
        "rss": _peak(),
    }


def _peak() -> float:
    """This process's peak resident memory, MB: the high-water mark of its own address space
    (``VmHWM``). Not ``ru_maxrss``: Linux carries that across ``exec``, so a child started
    from this bench would report the parent's size when it forked (after training)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child(kind: str, data: Path, bundle: str, live_events: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(data), bundle, str(live_events)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"the {kind} child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ingest_args(args: argparse.Namespace, scratch: Path) -> list[str]:
    """``tape ingest`` of the chosen input as session ``s``."""
    if args.ticker is None:
        return ["ingest", "binance", str(args.file), "--session", "s", "--quiet"]
    messages, books = pair(args.ticker)
    if args.tiles > 1:
        messages, books, _ = tile(scratch, args.tiles, messages, books)
    return [
        "ingest", "lobster", str(messages), str(books), "--symbol", args.ticker,
        "--date", "2012-06-21", "--session", "s", "--quiet",
    ]  # fmt: skip


def _prepare(data: Path, ingest: list[str], until: str) -> str:
    runner = CliRunner()
    result = runner.invoke(app, ["--data", str(data), "--fsync", "never", *ingest])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["--data", str(data), "train", "s", "--until", until, "--quiet"])
    assert result.exit_code == 0, result.output
    return _bundle_of(result.output)


def _outputs_hash(chains: dict[str, str]) -> str:
    """One sha256 over every output port's hash chain (port order): equal hashes, equal
    outputs on all ports (how a speed-up is checked to change nothing)."""
    text = "\n".join(f"{port} {chain}" for port, chain in sorted(chains.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _bundle_of(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("bundle "):
            return line.split()[1]
    raise SystemExit(f"tape train printed no bundle:\n{output}")


def main() -> None:
    """Prepare the data, then print the replay and live measurements; JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--ticker", help="a shared LOBSTER day instead of FILE (GOOG)")
    parser.add_argument("--tiles", type=int, default=1, help="LOBSTER copies back to back")
    parser.add_argument("--until", default="60%")
    parser.add_argument("--live-events", type=int, default=20_000)
    parser.add_argument(
        "--data",
        type=Path,
        help="keep the ingested data and bundle in this directory and reuse them when it "
        "already holds them (before/after comparisons on the very same bundle)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, data, bundle, events = args.child
        if kind == "replay":
            print(json.dumps(replay(Path(data), bundle)))
        else:
            print(json.dumps(live(Path(data), bundle, int(events))))
        return
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as csv:
        data = args.data or Path(tmp)
        kept = data / "bench-bundle.txt"
        if args.data and kept.exists():
            bundle = kept.read_text().strip()
        else:
            bundle = _prepare(data, _ingest_args(args, Path(csv)), args.until)
            if args.data:
                kept.write_text(bundle + "\n")
        r = _child("replay", data, bundle, 0)
        name = f"LOBSTER {args.ticker} x{args.tiles}" if args.ticker else args.file.name
        print(f"{name}: {r['events']:,} journal events; bundle {bundle[:12]}")
        print(
            f"replay: {r['events'] / r['seconds']:,.0f} journal events/s "
            f"({r['seconds']:.3f} s); peak RSS {r['rss']:,.0f} MB"
        )
        for stage, seconds in r["stages"].items():
            print(f"  {stage:<10} {seconds:7.3f} s  {seconds / r['seconds']:6.1%}")
        print("  outputs: " + ", ".join(f"{p} {n:,}" for p, n in r["counts"].items()))
        summary: dict[str, Any] = {
            "input": name,
            "events": r["events"],
            "events_per_s": round(r["events"] / r["seconds"]),
            "vectors": r["counts"].get("features", 0),
            "decisions": r["counts"].get("decisions", 0),
            "seconds": round(r["seconds"], 3),
            "peak_rss_mb": round(r["rss"]),
            "stage_seconds": {k: round(v, 3) for k, v in r["stages"].items()},
            "outputs_hash": _outputs_hash(r["chains"]),
            "chains": r["chains"],
        }
        if args.live_events:
            v = _child("live", data, bundle, args.live_events)
            d, e = v["decision_us"], v["every_us"]
            print(
                f"live, one event per slice, first {v['events']:,} events: market event -> "
                f"decision ({v['decisions']:,}) p50 {d[0]:.0f} us, p99 {d[1]:.0f} us, max "
                f"{d[2]:.0f} us; every event p50 {e[0]:.0f} us, p99 {e[1]:.0f} us, max "
                f"{e[2]:.0f} us; peak RSS {v['rss']:,.0f} MB"
            )
            print(
                "  mean per stage on events that caused a decision: "
                + ", ".join(f"{k} {us:.0f} us" for k, us in v["decision_stage_us"].items())
            )
            summary["live"] = {
                "events": v["events"],
                "decisions": v["decisions"],
                "decision_p50_us": round(d[0]),
                "decision_p99_us": round(d[1]),
                "decision_max_us": round(d[2]),
                "stage_us": {k: round(us) for k, us in v["decision_stage_us"].items()},
            }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
