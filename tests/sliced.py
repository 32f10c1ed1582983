"""Run a pipeline over a session cut into slices, for the batch-split determinism tests."""

from __future__ import annotations

from pathlib import Path

from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelSource
from engine.runtime import RunConfig, Runner, Topology
from engine.runtime.runner import latest_snapshot
from engine.runtime.runs import session_opened
from engine.runtime.topology import Catalog, resolve

Chains = list[tuple[str, int, str]]
"""Every output's (port, count, hash chain)."""


def topology(
    log: EmbeddedLog,
    session: str,
    config: RunConfig,
    models: ModelSource | None = None,
    pipelines: Catalog = SHIPPED,
) -> Topology:
    """``config``'s pipeline (from ``pipelines``) built for ``session``'s instrument."""
    opened = session_opened(log, session)
    resolved = resolve(pipelines, config, opened.instrument)
    chosen = pipelines.get(resolved["pipeline"])
    return Topology(chosen, resolved, session, opened.instrument, models)


def sliced_chains(
    data: Path,
    session: str,
    scratch: Path,
    config: RunConfig,
    cuts: list[int],
    batch: int,
    models: ModelSource | None = None,
    pipelines: Catalog = SHIPPED,
) -> Chains:
    """The outputs of a run stopped at every offset in ``cuts``, in slices of ``batch``."""
    log = EmbeddedLog(data)
    built = topology(log, session, config, models, pipelines)
    runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), "t", built)
    runner.begin()
    for cut in sorted(cuts):
        runner.advance(stop=max(cut, runner.offset), batch=batch)
    runner.advance(batch=batch)
    runner.close()
    return [(s.port, s.count, s.chain) for s in runner.summaries()]


def resumed_chains(
    data: Path,
    session: str,
    scratch: Path,
    config: RunConfig,
    kill_at: int,
    models: ModelSource | None = None,
    pipelines: Catalog = SHIPPED,
) -> Chains:
    """A run stopped at ``kill_at``, resumed from its last snapshot in a fresh topology."""
    snaps = scratch / "snapshots"
    log, sink, topic = EmbeddedLog(data), EmbeddedLog(scratch), journal_topic(session)
    every = config.snapshot_every
    first = Runner(
        log, topic, sink, "t", topology(log, session, config, models, pipelines), snaps, every
    )
    first.begin()
    first.advance(stop=min(kill_at, first.reader.end_offset), batch=333)
    first.close()
    second = Runner(
        log, topic, sink, "t", topology(log, session, config, models, pipelines), snaps, every
    )
    snapshot = latest_snapshot(snaps)
    if snapshot is None:
        second.begin()
    else:
        second.resume_from(snapshot)
    second.advance(batch=4096)
    second.close()
    return [(s.port, s.count, s.chain) for s in second.summaries()]
