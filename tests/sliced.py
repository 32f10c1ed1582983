"""Run a pipeline over a session cut into slices, for the batch-split determinism tests."""

from __future__ import annotations

from pathlib import Path

from engine.journal import journal_topic
from engine.log import EmbeddedLog
from engine.models import ModelSource
from engine.runtime import RunConfig, Runner, Topology, pipeline
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve

Chains = list[tuple[str, int, str]]
"""Every output's (port, count, hash chain)."""


def topology(
    log: EmbeddedLog, session: str, config: RunConfig, models: ModelSource | None = None
) -> Topology:
    """``config``'s pipeline built for ``session``'s instrument."""
    opened = session_opened(log, session)
    resolved = resolve(config, opened.instrument)
    return Topology(pipeline(resolved["pipeline"]), resolved, session, opened.instrument, models)


def sliced_chains(
    data: Path,
    session: str,
    scratch: Path,
    config: RunConfig,
    cuts: list[int],
    batch: int,
    models: ModelSource | None = None,
) -> Chains:
    """The outputs of a run stopped at every offset in ``cuts``, in slices of ``batch``."""
    log = EmbeddedLog(data)
    built = topology(log, session, config, models)
    runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), "t", built)
    runner.begin()
    for cut in sorted(cuts):
        runner.advance(stop=max(cut, runner.offset), batch=batch)
    runner.advance(batch=batch)
    runner.close()
    return [(s.port, s.count, s.chain) for s in runner.summaries()]
