"""Replaying a run: bit-for-bit verification with the first divergence, and state at a moment.

``verify`` recomputes a run from its journal range with its recorded config into a scratch
data directory, compares each output's count and hash chain with the manifest, and when they
differ finds the first divergent event: among all outputs, the differing event with the
earliest causing journal offset (ties go to the earlier stage), since everything after it may
only be its consequence.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.log import EmbeddedLog, FixedBatch
from engine.log.reader import PartitionReader
from engine.models import ModelSource
from engine.runtime.causes import likely_causes
from engine.runtime.driver import Topology
from engine.runtime.manifest import (
    OutputSummary,
    RunError,
    RunManifest,
    code_version,
    output_topic,
    read_manifest,
    run_dir,
)
from engine.runtime.runner import Progress, Runner, Snapshot, latest_snapshot
from engine.runtime.runs import default_models, session_opened
from engine.runtime.topology import Catalog
from engine.runtime.trace import event_at


@dataclass
class Divergence:
    """The first event where a replay differs from the recorded run."""

    port: str
    topic: str
    offset: int
    recorded: dict[str, Any] | None
    """The event as the run recorded it (None: the run has no event at this offset)."""
    replayed: dict[str, Any] | None
    """The event as the replay computed it (None: the replay has none here)."""
    cause: int
    journal_event: dict[str, Any] | None

    @property
    def fields(self) -> list[str]:
        """Names of the fields whose values differ."""
        a, b = self.recorded or {}, self.replayed or {}
        return [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


@dataclass
class Verification:
    """What ``tape replay --verify`` found."""

    manifest: RunManifest
    replayed: list[OutputSummary]
    code_differences: list[str]
    """How this replay's fingerprint (code, libraries, platform) differs from the run's."""
    divergence: Divergence | None = None
    differing_ports: list[str] = field(default_factory=list)
    missing_ports: list[str] = field(default_factory=list)
    """Ports in the run's manifest that the pipeline, as it is now, does not write."""
    likely_causes: list[str] = field(default_factory=list)
    """What may explain the first divergence, most likely first (:mod:`engine.runtime.causes`)."""

    @property
    def identical(self) -> bool:
        """Whether every recorded output was recomputed and matched in count and hash chain."""
        return not self.differing_ports and not self.missing_ports

    @property
    def events(self) -> int:
        """Output events compared."""
        return sum(o.count for o in self.replayed)


def _scratch(data: Path, purpose: str, run_id: str, root: Path | None = None) -> EmbeddedLog:
    directory = (root or data / "scratch") / f"{purpose}-{run_id}-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    return EmbeddedLog(directory)


def _replay(
    log: EmbeddedLog,
    manifest: RunManifest,
    scratch: EmbeddedLog,
    stop: int,
    batch: int,
    pipelines: Catalog,
    snapshot: Snapshot | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    models: ModelSource | None = None,
) -> Runner:
    """Recompute ``manifest``'s run into ``scratch`` up to journal offset ``stop``."""
    opened = session_opened(log, manifest.session)
    topology = Topology(
        pipelines.get(manifest.pipeline),
        dict(manifest.config),
        manifest.session,
        opened.instrument,
        models if models is not None else default_models(log),
    )
    runner = Runner(log, manifest.journal_topic, scratch, manifest.run_id, topology)
    runner.begin(manifest.journal_start)
    if snapshot is not None:
        runner.restore_state(snapshot)
    try:
        runner.advance(stop=stop, batch=batch, on_progress=on_progress)
    finally:
        runner.close()
    return runner


def verify(
    log: EmbeddedLog,
    run_id: str,
    *,
    pipelines: Catalog,
    batch: int = 65536,
    keep_scratch: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    models: ModelSource | None = None,
    scratch_root: Path | None = None,
) -> Verification:
    """Recompute run ``run_id`` and compare it with its manifest (see the module docstring).

    The run's pipeline is looked up by name in ``pipelines``; its model artifacts are read,
    by the hashes its config names, from ``models`` (default ``<data>/models``). The replay
    is written under ``scratch_root`` (default ``<data>/scratch``; the dashboard uses a
    temporary directory so that it never writes into the data directory).
    """
    manifest = read_manifest(log.root, run_id)
    if manifest.status not in ("complete", "stopped"):
        raise RunError(
            f"run {run_id} is not complete (status {manifest.status}); finish it with "
            f"`tape run {manifest.session} --run-id {run_id}` before verifying it"
        )
    scratch = _scratch(log.root, "verify", run_id, scratch_root)
    try:
        runner = _replay(
            log,
            manifest,
            scratch,
            manifest.journal_stop,
            batch,
            pipelines,
            None,
            on_progress,
            models,
        )
        now = code_version()
        result = Verification(manifest, runner.summaries(), manifest.code.differences(now))
        written = {o.port for o in result.replayed}
        result.missing_ports = [o.port for o in manifest.outputs if o.port not in written]
        recorded = {o.port: o for o in manifest.outputs}
        result.differing_ports = [
            o.port
            for o in result.replayed
            if o.port not in recorded
            or (o.count, o.chain) != (recorded[o.port].count, recorded[o.port].chain)
        ]
        if result.differing_ports:
            result.divergence = first_divergence(
                log, scratch, manifest, result.differing_ports, pipelines
            )
            port = result.divergence.port if result.divergence else result.differing_ports[0]
            stage, _ = pipelines.get(manifest.pipeline).producer_of(port)
            result.likely_causes = likely_causes(stage, manifest.code, now)
        return result
    finally:
        if not keep_scratch:
            shutil.rmtree(scratch.root, ignore_errors=True)


def first_divergence(
    log: EmbeddedLog,
    scratch: EmbeddedLog,
    manifest: RunManifest,
    ports: list[str],
    pipelines: Catalog,
) -> Divergence | None:
    """The earliest-caused differing event across ``ports`` (None if the run's topics are gone)."""
    chosen = pipelines.get(manifest.pipeline)
    found: list[tuple[int, int, Divergence]] = []
    for rank, port_name in enumerate(ports):
        _, port = chosen.producer_of(port_name)
        topic = output_topic(manifest.run_id, port_name)
        if not log.has_topic(topic):
            continue
        offset = _first_difference(log.reader(topic), scratch.reader(topic))
        if offset is None:
            continue
        recorded = event_at(log.reader(topic), offset)
        replayed = event_at(scratch.reader(topic), offset)
        cause = int((recorded or replayed or {}).get(port.cause, -1))
        journal_event = event_at(log.reader(manifest.journal_topic), cause) if cause >= 0 else None
        found.append(
            (
                cause,
                rank,
                Divergence(port_name, topic, offset, recorded, replayed, cause, journal_event),
            )
        )
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def _first_difference(a: PartitionReader, b: PartitionReader) -> int | None:
    offset = 0
    while True:
        x, y = a.read(offset, 65536), b.read(offset, 65536)
        if x is None or y is None:
            return None if x is None and y is None else offset
        n = min(len(x), len(y))
        if isinstance(x, FixedBatch) and isinstance(y, FixedBatch):
            rx = x.records[:n].view(np.uint8).reshape(n, -1)
            ry = y.records[:n].view(np.uint8).reshape(n, -1)
            rows = np.flatnonzero((rx != ry).any(axis=1))
            if len(rows):
                return offset + int(rows[0])
        else:
            for i, (vx, vy) in enumerate(zip(x.values()[:n], y.values()[:n], strict=True)):
                if vx != vy:
                    return offset + i
        offset += n


@dataclass
class Moment:
    """The state of every processor after a journal offset (``tape replay --until``)."""

    manifest: RunManifest
    offset: int
    """Last journal offset applied."""
    from_snapshot: int | None
    journal_event: dict[str, Any] | None
    states: dict[str, dict[str, Any]]


def state_at(
    log: EmbeddedLog,
    run_id: str,
    until: int,
    *,
    pipelines: Catalog,
    use_snapshots: bool = True,
    batch: int = 65536,
    models: ModelSource | None = None,
) -> Moment:
    """Replay run ``run_id`` through journal offset ``until`` and capture every stage's state.

    The nearest of the run's own snapshots at or before ``until`` is the starting point unless
    ``use_snapshots`` is false (or the code changed since the run, when snapshots are ignored).
    """
    manifest = read_manifest(log.root, run_id)
    if not manifest.journal_start <= until < manifest.journal_stop:
        raise RunError(
            f"offset {until} is outside run {run_id}'s journal range "
            f"{manifest.journal_start}..{manifest.journal_stop - 1}"
        )
    scratch = _scratch(log.root, "until", run_id)
    try:
        snapshot = None
        if use_snapshots and not manifest.code.differences(code_version()):
            snapshot = latest_snapshot(run_dir(log.root, run_id) / "snapshots", until + 1)
        runner = _replay(
            log, manifest, scratch, until + 1, batch, pipelines, snapshot, None, models
        )
        return Moment(
            manifest,
            until,
            snapshot.journal_offset if snapshot is not None else None,
            event_at(log.reader(manifest.journal_topic), until),
            runner.topology.inspect(),
        )
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)


def offset_at_time(log: EmbeddedLog, manifest: RunManifest, ns: int) -> int:
    """The last journal offset of the run whose timestamp is at or before ``ns``."""
    reader = log.reader(manifest.journal_topic)
    after = reader.offset_for_time(ns + 1)
    last = (manifest.journal_stop if after is None else min(after, manifest.journal_stop)) - 1
    if last < manifest.journal_start:
        raise RunError(f"run {manifest.run_id} has no journal event at or before that time")
    return last
