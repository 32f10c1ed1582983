"""Agents and consensus throughput, and their cost per call one event at a time.

Run: ``.venv/bin/python bench/decisions_bench.py [FILE]`` (default: the USD-M Binance recording
in ``../shared/data/crypto``, 532,925 journal events). The file is ingested into a temporary
data directory and run once through ``book -> mid -> features`` (book cadence) to get the
stages' real inputs. Then, each stage alone on those inputs (so only its own cost is timed):

1. replay: 64 Ki journal events per slice; vectors per second and journal events per second;
2. live: one journal event per slice; the cost of every call (p50 / p99 / max), and of the
   calls that carry a vector.

The consensus is fed the agents' real votes, labels computed from the real mids (the mid 2 s
after each vector against the mid at it) and predictions from a fixed momentum rule on
``return_5s`` (the models stage is not part of this tree). Last, the whole
``book -> mid -> features -> agents`` pipeline through the runner: replay over the file, and
live (one event per ``advance``) over its first 100,000 events, timing every event.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.events.book import BOOK_MID, BOOK_TOP_DTYPE
from engine.events.decisions import LABEL, PREDICTION, VOTES, new_records
from engine.events.features import FEATURES_VECTOR
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import (
    Pipeline,
    RunConfig,
    Runner,
    Slice,
    StageContext,
    Topology,
)
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve
from streams.agents import AGENTS_STAGE, AgentsStage
from streams.book.stage import BOOK_STAGE
from streams.consensus import CONSENSUS_STAGE, ConsensusStage
from streams.features import FEATURES_STAGE, INDEX
from streams.mid import MID_STAGE

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_FILE = SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz"
HORIZON = 2_000_000_000
LIVE_EVENTS = 100_000
PIPELINES = SHIPPED.extended(
    Pipeline("bench-agents", (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, AGENTS_STAGE))
)


def _topic(log: EmbeddedLog, name: str, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    parts, offset, reader = [], 0, log.reader(name)
    while (batch := reader.read(offset, 1 << 20)) is not None:
        offset = batch.next_offset
        if isinstance(batch, FixedBatch):
            parts.append(batch.view(dtype).copy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _market(log: EmbeddedLog, session: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The journal's market records and their offsets."""
    recs, offs, offset, reader = [], [], 0, log.reader(journal_topic(session))
    while (batch := reader.read(offset, 1 << 16)) is not None:
        if isinstance(batch, FixedBatch):
            recs.append(batch.view(MARKET_RECORD).copy())
            offs.append(np.arange(batch.base_offset, batch.next_offset))
        offset = batch.next_offset
    return np.concatenate(recs), np.concatenate(offs)


def _labels(
    vectors: np.ndarray[Any, Any], mids: np.ndarray[Any, Any], offsets: Any, ts: Any
) -> Any:
    """For each vector, the sign of the mid's move over HORIZON, maturing at the first journal
    event past it (the same definition as labels.label)."""
    two = mids[mids["two_sided"] == 1]
    out = new_records(LABEL, len(vectors))
    clock = np.maximum.accumulate(ts)
    at_end = np.searchsorted(clock, vectors["ts_event"] + HORIZON, side="right")
    keep = at_end < len(offsets)
    for i, v in enumerate(vectors):
        start = np.searchsorted(two["cause"], v["cause"], side="right") - 1
        end_cause = offsets[min(at_end[i], len(offsets) - 1)]
        end = np.searchsorted(two["cause"], end_cause, side="left") - 1
        out[i]["origin"], out[i]["origin_ts"], out[i]["cause"] = (
            v["cause"],
            v["ts_event"],
            end_cause,
        )
        if start < 0 or end < 0:
            out[i]["flags"], out[i]["move"] = 1, math.nan
            continue
        move = math.log(two["mid"][end] / two["mid"][start])
        out[i]["move"] = move
        out[i]["label"] = 1 if move > 0.5e-4 else -1 if move < -0.5e-4 else 0
    return out[keep]


def _predictions(vectors: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out = new_records(PREDICTION, len(vectors))
    out["cause"], out["ts_event"] = vectors["cause"], vectors["ts_event"]
    z = np.tanh(vectors["values"][:, INDEX["return_5s"]] / 2.0)
    meta = np.stack([0.7 * (1 - z) / 2, np.full(len(z), 0.3), 0.7 * (1 + z) / 2], axis=1)
    out["meta"], out["online"] = meta, meta[:, ::-1]
    return out


def _pieces(offsets: np.ndarray[Any, Any], size: int) -> list[tuple[int, int]]:
    """Index ranges of the market records, ``size`` at a time."""
    return [(i, min(i + size, len(offsets))) for i in range(0, len(offsets), size)]


def _feed(stage: Any, market: Any, offsets: Any, inputs: dict[str, Any], size: int) -> list[float]:
    """Push the records through ``stage`` ``size`` at a time; each call's seconds."""
    keys = {
        name: arr["offset" if name == "book" else "cause"].astype(np.int64)
        for name, arr in inputs.items()
    }
    costs = []
    for lo, hi in _pieces(offsets, size):
        start, stop = int(offsets[lo]), int(offsets[hi - 1]) + 1
        sub = {}
        for name, arr in inputs.items():
            a, b = np.searchsorted(keys[name], [start, stop])
            sub[name] = arr[a:b]
        piece = Slice(start, stop, market=market[lo:hi], inputs=sub)
        t = time.perf_counter()
        stage.process(piece)
        costs.append(time.perf_counter() - t)
    return costs


def _report(
    name: str, n_vec: int, n_events: int, replay: float, live: list[float], vec_at: Any
) -> None:
    live_us = np.array(live) * 1e6
    with_vec = live_us[vec_at]
    print(
        f"{name:10s} replay {n_vec / replay:>12,.0f} vectors/s {n_events / replay:>12,.0f} "
        f"events/s ({replay * 1e3:.1f} ms) | live per call: p50 {np.percentile(live_us, 50):.1f} "
        f"p99 {np.percentile(live_us, 99):.1f} max {live_us.max():.0f} us; with a vector: p50 "
        f"{np.percentile(with_vec, 50):.1f} p99 {np.percentile(with_vec, 99):.1f} us"
    )


def _pipeline(log: EmbeddedLog, session: str, scratch: Path, live: int) -> None:
    """The pipeline in replay over the whole file, then one event per call for ``live``."""
    spec = session_opened(log, session).instrument
    resolved = resolve(PIPELINES, RunConfig(pipeline="bench-agents"), spec)
    for mode in ("replay", "live"):
        top = Topology(PIPELINES.get("bench-agents"), resolved, session, spec)
        runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), mode, top)
        runner.begin()
        if mode == "replay":
            t = time.perf_counter()
            runner.advance(batch=65536)
            seconds, n = time.perf_counter() - t, runner.offset
            print(
                f"pipeline book->mid->features->agents, replay: {n / seconds:,.0f} journal "
                f"events/s ({seconds:.2f} s for {n:,})"
            )
        else:
            costs = []
            for offset in range(live):
                t = time.perf_counter()
                runner.advance(stop=offset + 1, batch=1)
                costs.append(time.perf_counter() - t)
            us = np.array(costs) * 1e6
            print(
                f"pipeline book->mid->features->agents, live (first {live:,} events, one per "
                f"call): mean {us.mean():.1f} p50 {np.percentile(us, 50):.1f} p99 "
                f"{np.percentile(us, 99):.1f} max {us.max():.0f} us per event"
            )
        runner.close()


def main(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        kind = "b3" if path.suffix == ".csv" else "binance"
        args = ["--data", str(data), "--fsync", "never", "ingest", kind, str(path)]
        result = CliRunner().invoke(app, [*args, "--session", "s", "--quiet"])
        assert result.exit_code == 0, result.output
        log = EmbeddedLog(data)
        spec = session_opened(log, "s").instrument
        features_run = Path(tmp) / "features"
        config = RunConfig(pipeline="bench-agents")
        resolved = resolve(PIPELINES, config, spec)
        top = Topology(PIPELINES.get("bench-agents"), resolved, "s", spec)
        runner = Runner(log, journal_topic("s"), EmbeddedLog(features_run), "f", top)
        runner.begin()
        runner.advance()
        runner.close()
        out = EmbeddedLog(features_run)
        tops = _topic(out, "run.f.book", BOOK_TOP_DTYPE)
        mids = _topic(out, "run.f.mid", BOOK_MID.dtype)
        vectors = _topic(out, "run.f.features", FEATURES_VECTOR.dtype)
        votes = _topic(out, "run.f.votes", VOTES.dtype)
        market, offsets = _market(log, "s")
        vec_at = np.isin(offsets, vectors["cause"])
        print(f"{path.name}: {len(offsets):,} market records, {len(vectors):,} vectors")

        def agents() -> AgentsStage:
            context = StageContext("s", spec, resolved["stages"]["agents"], 0)
            return AgentsStage(context)

        agent_inputs = {"features": vectors, "book": tops}
        _feed(agents(), market[:5000], offsets[:5000], agent_inputs, 1)  # compile
        replay = sum(_feed(agents(), market, offsets, agent_inputs, 65536))
        live = _feed(agents(), market, offsets, agent_inputs, 1)
        _report("agents", len(vectors), len(offsets), replay, live, vec_at)

        labels = _labels(vectors, mids, offsets, market["ts_event"])
        cons_inputs = {
            "features": vectors,
            "predictions": _predictions(vectors),
            "votes": votes,
            "labels": labels,
        }

        def consensus() -> ConsensusStage:
            return ConsensusStage(StageContext("s", spec, CONSENSUS_STAGE.defaults(spec), 0))

        _feed(consensus(), market[:5000], offsets[:5000], cons_inputs, 1)
        replay = sum(_feed(consensus(), market, offsets, cons_inputs, 65536))
        live = _feed(consensus(), market, offsets, cons_inputs, 1)
        _report("consensus", len(vectors), len(offsets), replay, live, vec_at)

        _pipeline(log, "s", Path(tmp) / "pipeline", min(LIVE_EVENTS, len(offsets)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE)
