"""Latency through the real live path: simulator -> socket -> feed -> journal -> pipeline ->
order gateway -> paper broker.

Run: ``.venv/bin/python bench/live_latency.py [FILE] [--warmup S] [--paced S] [--burst X]
[--log kafka://HOST:PORT]``
(default: the bundled Binance spot day, ``replays/samples/binance_spot_btcusdt_20240808.gz``,
346 s). ``tape exchange-sim`` serves the recording in its own process; in this process a
``tape live`` session (``LiveSession``: the ``default`` pipeline, the paper broker, clock ticks,
the journal synced every 100 ms by a background thread, as ``tape live`` does) follows it
over loopback.
The recording is played in three phases, switched by the simulator itself at the first message
of each (``--fault pace:X@MESSAGE``):

1. ``warmup``: the first ``--warmup`` seconds (default 100: the features' 90 s warm-up) at
   ``--warmup-speed`` (default 4) times the recorded pace, so decisions are being made when
   measuring starts (as fast as possible would leave a backlog of frames in the socket that
   the next phase would inherit);
2. ``recorded``: the next ``--paced`` seconds (default 120) at the recorded pace;
3. ``burst``: the rest at ``--burst`` (default 10) times the recorded pace.

Per phase, p50 / p99 / p99.9 / max of

(a) socket receive -> decision: from the feed reading a frame off the WebSocket (the records'
    ``ts_recv``) to the ``consensus.decision`` it caused being emitted (every decision, flat
    ones included);
(b) socket receive -> order handed to the broker: to the order gateway passing the order on;

and ``pace lag``: how far behind the recorded pace the feed read the frames (0 while it keeps
up; it grows when the path is slower than the stream, time (a) and (b) do not include).
Counts: frames, journal events, decisions, orders. The last line printed is one JSON object.

With ``--log kafka://HOST:PORT`` the session runs on that cluster as ``tape live --log`` does
(docs/live.md, "Live on Kafka"): the journal acknowledged on the cluster per append, the
pipeline the worker's transactional loop in a thread, orders handed over once committed; the
journal is mirrored back afterwards to find the phases.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.app.exchange_sim import load
from engine.app.feeds.binance import FeedConfig
from engine.app.ingest import binance
from engine.app.live.session import LiveConfig, LiveSession
from engine.app.mirror import mirror_session
from engine.app.pipelines import SHIPPED
from engine.app.worker.live import LiveWorker
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic
from engine.log.kafka import KafkaLog
from engine.runtime import RunConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "replays" / "samples" / "binance_spot_btcusdt_20240808.gz"
TAPE = str(Path(sys.executable).with_name("tape"))


def _simulator(
    recording: Path, starts: tuple[int, int], warmup_speed: float, burst: float
) -> tuple[subprocess.Popen[str], str, str]:
    paces = ["--fault", f"pace:1@{starts[0]}", "--fault", f"pace:{burst:g}@{starts[1]}"]
    proc = subprocess.Popen(
        [TAPE, "exchange-sim", str(recording), "--speed", f"{warmup_speed:g}", *paces],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    ws, rest = proc.stdout.readline().strip().removeprefix("ws-url=").split(" rest-url=")
    return proc, ws, rest


def _phase_starts(recording: Path, warmup: float, paced: float) -> tuple[list[int], list[int]]:
    """Stream message indexes where the recorded phase and the burst begin, and the venue
    time (ns) of the first trade or depth update from there (to find them in the journal)."""
    messages = [m for m in load(recording).messages if m.kind != "snapshot"]
    first = messages[0].ts
    starts, times = [], []
    for seconds in (warmup, warmup + paced):
        at = next(i for i, m in enumerate(messages) if m.ts - first >= seconds * 1e9)
        starts.append(at)
        times.append(next(_venue_ns(m.body) for m in messages[at:] if m.kind in ("trade", "depth")))
    return starts, times


def _venue_ns(body: bytes) -> int:
    return int(json.loads(body)["data"]["E"]) * 1_000_000


def _received_from(records: np.ndarray[Any, Any], venue_ns: int) -> int:
    """Local receive time of the first trade or depth record at or after venue time."""
    timed = records[np.isin(records["type_id"], (1, 6)) & (records["ts_event"] >= venue_ns)]
    return int(timed["ts_recv"][0])


def _percentiles(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    us = np.asarray(values, np.float64) / 1e3
    p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
    return {"count": len(values), "p50_us": round(p50, 1), "p99_us": round(p99, 1),
            "p99.9_us": round(p999, 1), "max_us": round(float(us.max()), 1)}  # fmt: skip


def _pace_lag(records: np.ndarray[Any, Any], speed: float | None) -> dict[str, Any]:
    """How far behind the recorded pace the frames were read (trades and depth: venue times)."""
    timed = records[np.isin(records["type_id"], (1, 6))]
    if speed is None or not len(timed):
        return {}
    lag = (timed["ts_recv"] - timed["ts_recv"][0]) - (
        timed["ts_event"] - timed["ts_event"][0]
    ) / speed
    lag = lag - lag.min()
    return {"pace_lag_p99_ms": round(float(np.percentile(lag, 99)) / 1e6, 2),
            "pace_lag_max_ms": round(float(lag.max()) / 1e6, 2)}  # fmt: skip


def _records(log: EmbeddedLog, session: str) -> np.ndarray[Any, Any]:
    parts = [b.view(MARKET_RECORD).copy() for b in log.reader(journal_topic(session)).batches()
             if isinstance(b, FixedBatch)]  # fmt: skip
    return np.concatenate(parts)


def _host(log: KafkaLog, session: str, run: RunConfig, instrument: Any) -> LiveWorker:
    return LiveWorker(log, session, run, instrument, pipelines=SHIPPED, models=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--warmup", type=float, default=100.0)
    parser.add_argument("--paced", type=float, default=120.0)
    parser.add_argument("--warmup-speed", type=float, default=4.0)
    parser.add_argument("--burst", type=float, default=10.0)
    parser.add_argument(
        "--fsync",
        default="background:100",
        help="journal durability: background:MS (tape live's default: appends unsynced, a "
        "thread syncs every MS), or a --fsync policy (batch, interval:MS, never) in the append",
    )
    parser.add_argument("--log", default=None, help="run on this Kafka cluster: kafka://HOST:PORT")
    args = parser.parse_args()
    market, symbol = binance.detect(args.file)
    starts, venue_times = _phase_starts(args.file, args.warmup, args.paced)
    with tempfile.TemporaryDirectory() as tmp:
        background = args.fsync.startswith("background:")
        policy = FsyncPolicy(FsyncMode.NEVER) if background else FsyncPolicy.parse(args.fsync)
        log = EmbeddedLog(tmp, policy)
        proc, ws, rest = _simulator(
            args.file, (starts[0], starts[1]), args.warmup_speed, args.burst
        )
        try:
            feed = FeedConfig(symbol, market, ws, rest, end_with_feed=True)
            sync_ms = int(args.fsync.partition(":")[2]) if background else 0
            config = LiveConfig(
                "bench", feed, binance.instrument(market, symbol), SHIPPED, sync_ms=sync_ms
            )
            name, on_kafka = "bench", None
            if args.log is not None:
                name = f"bench-live-{os.getpid()}-{int(time.time())}"
                config = dataclasses.replace(config, session=name)
                on_kafka = (KafkaLog(args.log.removeprefix("kafka://")), _host)
            session = LiveSession(log, config, kafka=on_kafka)
            began = time.perf_counter()
            result = asyncio.run(session.run())
            seconds = time.perf_counter() - began
        finally:
            proc.terminate()
            proc.wait(10)
        tracker = session.tracker
        assert tracker is not None
        if on_kafka is not None:  # the journal, mirrored back to find the phases in it
            mirror_session(on_kafka[0], log, name, pipelines=SHIPPED)
        records = _records(log, name)
    bounds = [0, *(_received_from(records, t) for t in venue_times), 2**63 - 1]
    speeds: list[float | None] = [args.warmup_speed, 1.0, args.burst]
    phases = {}
    for name, lo, hi, speed in zip(("warmup", "recorded", "burst"), bounds, bounds[1:], speeds,
                                   strict=False):  # fmt: skip
        mine = records[(records["ts_recv"] >= lo) & (records["ts_recv"] < hi)]
        decided = [lat for at, lat in tracker.decision_latency if lo <= at < hi]
        ordered = [lat for at, lat in tracker.order_latency if lo <= at < hi]
        phases[name] = {
            "speed": speed,
            "journal_market_records": len(mine),
            "decision_latency": _percentiles(decided),
            "order_latency": _percentiles(ordered),
            **_pace_lag(mine, speed),
        }
    out = {
        "bench": "live_latency",
        "file": args.file.name,
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "fsync": args.fsync if args.log is None else "kafka acks=all per append",
        "log": args.log or "data directory",
        "wall_seconds": round(seconds, 1),
        "ended": result.reason,
        "journal_events": result.manifest.journal_stop,
        "frames": session.feed.stats.frames if session.feed else 0,
        "decisions": tracker.decisions,
        "orders": tracker.orders,
        "phases": phases,
    }
    for name, phase in phases.items():
        print(f"{name:>9}: {json.dumps(phase)}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
