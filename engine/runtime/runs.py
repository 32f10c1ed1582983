"""Starting, resuming and recording runs (``tape run``): the I/O edge around the runner."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from engine.events import decode
from engine.events.control import InstrumentSpec, SessionOpened
from engine.log import EmbeddedLog, FixedBatch, RecordBatch
from engine.log.journal import journal_topic
from engine.models import ModelSource, ModelStore, run_models
from engine.runtime.driver import Topology
from engine.runtime.manifest import (
    RunError,
    RunManifest,
    code_version,
    new_run_id,
    output_topic,
    outputs_hash,
    read_manifest,
    run_dir,
    write_manifest,
)
from engine.runtime.processor import Output, Port
from engine.runtime.runner import Progress, Runner, latest_snapshot
from engine.runtime.topology import (
    Catalog,
    Pipeline,
    ReportContext,
    RunConfig,
    config_hash,
    resolve,
    stage_seed,
)

OPEN_WAIT_SECONDS = 60.0
"""How long a live (``follow``) run waits for its feed to open the session."""


def default_models(log: EmbeddedLog) -> ModelStore:
    """The model store of a data directory: ``<data>/models``."""
    return ModelStore(log.root / "models")


def session_opened(log: EmbeddedLog, session: str, wait_seconds: float = 0.0) -> SessionOpened:
    """The ``session.opened`` event that starts a session's journal.

    ``wait_seconds`` lets a live run start before its feed has written the first event.
    """
    topic = journal_topic(session)
    if not log.has_topic(topic):
        sessions = [t.removesuffix(".journal") for t in log.topics() if t.endswith(".journal")]
        raise RunError(
            f"no session {session!r} in {log.root} (sessions: {', '.join(sessions) or 'none'}); "
            "ingest one with `tape ingest`"
        )
    reader = log.reader(topic)
    deadline = time.monotonic() + wait_seconds
    while (batch := reader.read(reader.start_offset, 1)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    event = decode(batch.values()[0]) if isinstance(batch, RecordBatch) else None
    if not isinstance(event, SessionOpened):
        raise RunError(f"journal {topic} does not start with session.opened; it cannot be run")
    return event


@dataclass
class RunOutcome:
    """A finished run and how it got there."""

    manifest: RunManifest
    resumed_from: int | None
    """Journal offset of the snapshot this invocation resumed from (None: it started fresh)."""


@dataclass
class StartedRun:
    """A run set up to process its journal: fresh, or resumed from its last snapshot."""

    runner: Runner
    manifest: RunManifest
    """The ``running`` manifest already written."""
    pipeline: Pipeline
    resolved: dict[str, Any]
    instrument: InstrumentSpec
    snapshot_offset: int | None
    """Journal offset of the snapshot it resumed from (None: it started fresh)."""
    began: float = 0.0
    first: int = 0


def start_run(
    log: EmbeddedLog,
    session: str,
    config: RunConfig | None = None,
    *,
    pipelines: Catalog,
    run_id: str | None = None,
    models: ModelSource | None = None,
    wait_seconds: float = 0.0,
) -> StartedRun:
    """Set up a run of ``session`` (or resume run ``run_id``) and write its ``running``
    manifest; :func:`seal_run` records how it ended. ``wait_seconds``: how long to wait for a
    live feed to open the session."""
    store = models if models is not None else default_models(log)
    opened = session_opened(log, session, wait_seconds)
    existing = _existing(log.root, run_id)
    resolved = _run_config(pipelines, session, config, opened.instrument, existing)
    chosen = pipelines.get(str(resolved["pipeline"]))
    run_id = run_id or new_run_id(log.root, session, chosen.name)
    snapshots = run_dir(log.root, run_id) / "snapshots"
    runner = Runner(
        log,
        journal_topic(session),
        log,
        run_id,
        Topology(chosen, resolved, session, opened.instrument, store),
        snapshots=snapshots,
        snapshot_every=int(resolved["snapshot_every"]),
    )
    try:  # whatever fails, the run's topic writers (and their locks) are released
        snapshot = latest_snapshot(snapshots) if existing is not None else None
        if snapshot is not None:
            runner.resume_from(snapshot)
        else:
            runner.begin()
        models_used = run_models(resolved, store)
        manifest = _running_manifest(runner, run_id, session, resolved, models_used)
        if existing is not None:
            resumed = [*existing.resumed_from, runner.offset]
            manifest = msgspec.structs.replace(
                manifest, started=existing.started, resumed_from=resumed
            )
        write_manifest(log.root, manifest)
    except BaseException:
        runner.close()
        raise
    offset = snapshot.journal_offset if snapshot is not None else None
    return StartedRun(
        runner,
        manifest,
        chosen,
        resolved,
        opened.instrument,
        offset,
        time.perf_counter(),
        runner.offset,
    )


def seal_run(log: EmbeddedLog, run: StartedRun, status: str = "complete") -> RunManifest:
    """Close the run's outputs and write its final manifest: ``complete``, or ``stopped`` (a
    live run its operator stopped: verifiable as it stands, and resumable)."""
    run.runner.close()
    seconds = time.perf_counter() - run.began
    stop = run.runner.offset
    outputs = run.runner.summaries()
    done = msgspec.structs.replace(
        run.manifest,
        status=status,
        journal_stop=stop,
        outputs=outputs,
        outputs_hash=outputs_hash(outputs),
        wall_seconds=round(seconds, 6),
        events_per_second=round((stop - run.first) / seconds, 1) if seconds > 0 else 0.0,
        report=stage_reports(
            log,
            run.manifest.run_id,
            run.pipeline,
            run.resolved,
            run.instrument,
            (run.manifest.journal_start, stop),
        ),
    )
    write_manifest(log.root, done)
    return done


def execute(
    log: EmbeddedLog,
    session: str,
    config: RunConfig | None = None,
    *,
    pipelines: Catalog,
    run_id: str | None = None,
    batch: int = 65536,
    follow: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    models: ModelSource | None = None,
) -> RunOutcome:
    """Run a pipeline over a session into its own namespace, or resume an interrupted run.

    An existing ``run_id`` whose manifest says ``running`` (killed, or stopped) is resumed from
    its last snapshot with its recorded config; a complete one is refused. Model artifacts
    (``stages.models.bundle``) come from ``models``, by default ``<data>/models``.
    """
    wait = OPEN_WAIT_SECONDS if follow else 0.0
    run = start_run(
        log, session, config, pipelines=pipelines, run_id=run_id, models=models, wait_seconds=wait
    )
    try:
        run.runner.advance(batch=batch, follow=follow, on_progress=on_progress)
    except BaseException:
        run.runner.close()
        raise
    return RunOutcome(seal_run(log, run), run.snapshot_offset)


def _run_config(
    pipelines: Catalog,
    session: str,
    config: RunConfig | None,
    instrument: InstrumentSpec,
    existing: RunManifest | None,
) -> dict[str, Any]:
    """The resolved config of a new run, or the recorded one of a run being resumed (which
    must be of the same session and, when a config is given, of the same config)."""
    if existing is None:
        return resolve(pipelines, config or RunConfig(), instrument)
    if existing.session != session:
        raise RunError(f"run {existing.run_id} is of session {existing.session!r}, not {session!r}")
    if config is not None and config_hash(resolve(pipelines, config, instrument)) != (
        existing.config_hash
    ):
        raise RunError(
            f"run {existing.run_id} was started with another config "
            f"({existing.config_hash[:12]}); resume it without --config, or use a new --run-id"
        )
    return dict(existing.config)


def _running_manifest(
    runner: Runner, run_id: str, session: str, resolved: dict[str, Any], models: dict[str, str]
) -> RunManifest:
    """The manifest of a run that has started (status ``running``: not yet verifiable)."""
    return RunManifest(
        run_id=run_id,
        session=session,
        pipeline=str(resolved["pipeline"]),
        status="running",
        journal_topic=journal_topic(session),
        journal_start=runner.reader.start_offset,
        journal_stop=runner.reader.end_offset,
        code=code_version(),
        config=resolved,
        config_hash=config_hash(resolved),
        models=models,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def read_port(log: EmbeddedLog, run_id: str, port: Port) -> Output:
    """Every event of a run's port: one record array (fixed width) or decoded structs."""
    reader = log.reader(output_topic(run_id, port.name))
    arrays: list[np.ndarray[Any, Any]] = []
    events: list[msgspec.Struct] = []
    for batch in reader.batches():
        if isinstance(batch, FixedBatch):
            assert port.event_type.dtype is not None
            arrays.append(batch.view(port.event_type.dtype))
        else:
            events.extend(decode(v) for v in batch.values())
    if port.fixed:
        return np.concatenate(arrays) if arrays else port.empty()
    return events


def _read_named(log: EmbeddedLog, run_id: str, ports: dict[str, Port], name: str) -> Output | None:
    return read_port(log, run_id, ports[name]) if name in ports else None


def stage_reports(
    log: EmbeddedLog,
    run_id: str,
    chosen: Pipeline,
    resolved: dict[str, Any],
    instrument: InstrumentSpec,
    journal: tuple[int, int],
) -> dict[str, dict[str, object]]:
    """Each reporting stage's end-of-run summary (:attr:`Stage.report`), by stage id."""
    reports: dict[str, dict[str, object]] = {}
    ports = {p.name: p for _, p in chosen.written()}
    for stage in chosen.stages:
        if stage.report is None:
            continue
        context = ReportContext(
            config=resolved["stages"][stage.id],
            read=partial(_read_named, log, run_id, ports),
            instrument=instrument,
            seed=stage_seed(int(resolved["seed"]), stage.id),
            journal=journal,
        )
        reports[stage.id] = stage.report(context)
    return reports


def _existing(data: Path, run_id: str | None) -> RunManifest | None:
    if run_id is None or not (run_dir(data, run_id) / "manifest.json").is_file():
        return None
    manifest = read_manifest(data, run_id)
    if manifest.status == "complete":
        raise RunError(
            f"run {run_id} is already complete; check it with `tape replay {run_id} --verify`, "
            "or choose another --run-id"
        )
    return manifest
