"""The projector: a consumer of the log that fills the store's tables, exactly once.

It reads topic partitions in offset order, turns each batch into rows (:mod:`engine.app.store.rows`)
and writes them in one database transaction together with its new position in every partition
it read (table ``consumer_offsets``, one row per consumer group, topic and partition). A crash
anywhere rolls back the rows and the position together, so the next start resumes exactly
after the last committed batch: no row is lost or written twice, and projecting again adds
nothing. Rows go in with PostgreSQL ``COPY`` (psycopg's ``cursor.copy`` on the SQLAlchemy
connection's driver connection) or SQLite ``executemany``.

Consumer groups: ``store`` projects journals, quarantines and run topics; ``store.book_deltas``
projects a journal's book changes into ``book_deltas`` when asked (off by default), so that
switching it on later back-fills them without touching the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, exc

from engine.app.store import indexes, migrate, pgcopy
from engine.app.store.migrate import display
from engine.app.store.rows import (
    COLUMNS,
    RUN_TABLES,
    Mapper,
    Rows,
    journal_mapper,
    merge,
    part_rows,
    quarantine_mapper,
    trading_report_rows,
)
from engine.app.store.schema import Base
from engine.app.store.sql import PG_TYPES, ProjectError, move, new_instruments, write
from engine.app.store.writer import Writer
from engine.log import Batch, EmbeddedLog, PartitionReader
from engine.log.journal import JOURNAL_SCHEMA, journal_topic, quarantine_topic
from engine.runtime.manifest import RunError, RunManifest, list_runs, read_manifest

GROUP = "store"
"""Consumer group of everything but book deltas."""
DELTAS_GROUP = "store.book_deltas"
"""Consumer group projecting journals' book changes into ``book_deltas``."""
DEFAULT_BATCH = 65536
"""Log records per transaction."""
FOLLOW_PAUSE = 0.2
"""Seconds between looks at the log when ``follow`` finds nothing new."""

_OFFSETS = Base.metadata.tables["consumer_offsets"]
_RUNS = Base.metadata.tables["runs"]
_OUTPUTS = Base.metadata.tables["run_outputs"]
_REPORTS = Base.metadata.tables["trading_reports"]


@dataclass(frozen=True)
class Scope:
    """What to project: one run (with its session's journal), one session (journal and every
    run of it), or everything in the data directory."""

    run: str | None = None
    session: str | None = None

    def describe(self) -> str:
        """For messages: ``run X``, ``session Y`` or ``every session and run``."""
        if self.run:
            return f"run {self.run}"
        return f"session {self.session}" if self.session else "every session and run"


@dataclass(frozen=True)
class Source:
    """One topic partition the projector reads, the group it reads it for, its mapper and the
    table that gets most of its rows."""

    group: str
    topic: str
    partition: int
    mapper: Mapper
    table: str


@dataclass
class Progress:
    """How far a projection is: log records read of those there were when it started."""

    records: int = 0
    total: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def row_count(self) -> int:
        """Rows written, all tables together."""
        return sum(self.rows.values())

    def add(self, table: str, n: int) -> None:
        """Count ``n`` rows written to ``table``."""
        self.rows[table] = self.rows.get(table, 0) + n


def sessions(log: EmbeddedLog) -> list[str]:
    """Every session with a journal in the log, sorted."""
    suffix = ".journal"
    return [
        t.removesuffix(suffix)
        for t in log.topics()
        if t.endswith(suffix) and log.config(t).schema_name == JOURNAL_SCHEMA
    ]


def resolve(log: EmbeddedLog, scope: Scope) -> tuple[list[str], list[RunManifest]]:
    """The sessions and runs in ``scope``; :class:`ProjectError` if it names nothing."""
    known = sessions(log)
    if scope.run:
        try:
            manifest = read_manifest(log.root, scope.run)
        except RunError as error:
            raise ProjectError(str(error)) from None
        return [manifest.session], [manifest]
    runs = list_runs(log.root)
    if scope.session:
        if scope.session not in known:
            raise ProjectError(
                f"no session {scope.session!r} in {log.root} (sessions: "
                f"{', '.join(known) or 'none'}); see `tape topics`"
            )
        return [scope.session], [m for m in runs if m.session == scope.session]
    return known, runs


def sources(log: EmbeddedLog, scope: Scope, book_deltas: bool = False) -> list[Source]:
    """Every topic partition to read for ``scope``."""
    names, runs = resolve(log, scope)
    out = []
    for session in names:
        journal = journal_topic(session)
        out.append(Source(GROUP, journal, 0, journal_mapper(session, False), "trades"))
        if book_deltas:
            deltas = journal_mapper(session, book_deltas=True)
            out.append(Source(DELTAS_GROUP, journal, 0, deltas, "book_deltas"))
        quarantine = quarantine_topic(session)
        if log.has_topic(quarantine):
            out.append(Source(GROUP, quarantine, 0, quarantine_mapper(session), "quarantine"))
    topics = log.topics()
    for manifest in runs:
        prefix = f"run.{manifest.run_id}."
        for topic in topics:
            if not topic.startswith(prefix):
                continue
            config = log.config(topic)
            if config.schema_name in RUN_TABLES:
                table, make = RUN_TABLES[config.schema_name]
                mapper = make(manifest.run_id)
                parts = range(config.partitions)
                out.extend(Source(GROUP, topic, p, mapper, table) for p in parts)
    return out


class Projector:
    """Projects the log in data directory ``log.root`` into the store at ``url``."""

    def __init__(
        self, log: EmbeddedLog, url: str, book_deltas: bool = False, batch: int = DEFAULT_BATCH
    ) -> None:
        if batch < 1:
            raise ProjectError(f"batch must be at least 1 log record, got {batch}")
        self.log = log
        self.url = url
        self.book_deltas = book_deltas
        self.batch = batch
        check_schema(url)
        self.engine: Engine = migrate.open_engine(url)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def project(
        self, scope: Scope, on_progress: Callable[[Progress], None] | None = None
    ) -> Progress:
        """Project everything in ``scope`` up to the log's current end; returns the counts."""
        began = time.perf_counter()
        progress = Progress()
        # One connection for the whole pass: a PostgreSQL connection costs milliseconds to open.
        with self.engine.connect() as connection:
            for manifest in resolve(self.log, scope)[1]:
                progress.add("runs", 0)
                self._project_manifest(connection, manifest, progress)
            committed = self._committed(connection)
            plan = self._plan(scope, committed, progress)
            deferred = self._defer_indexes(connection, plan)
            postgres = connection.dialect.name == "postgresql"

            def commit(pending: _Pending) -> None:
                self._flush(connection, pending, progress)

            # PostgreSQL: batches commit on a thread of their own (the server works while the
            # next batch is read, mapped and encoded here). SQLite's executemany holds the GIL
            # and its connection belongs to this thread: it commits in line.
            writer = Writer(commit) if postgres else None
            try:
                pending = _Pending()
                for source, reader, start, end in plan:
                    key = (source.group, source.topic, source.partition)
                    position = start
                    while position < end:
                        room = min(self.batch - pending.records, end - position)
                        batch = reader.read(position, room)
                        if batch is None or not len(batch):
                            break
                        pending.add(source.mapper(batch), key, committed.get(key), batch)
                        progress.records += len(batch)
                        position = batch.next_offset
                        if pending.records >= self.batch:
                            self._hand_over(pending, committed, writer, commit)
                            pending = _Pending()
                            if on_progress is not None:
                                progress.seconds = time.perf_counter() - began
                                on_progress(progress)
                self._hand_over(pending, committed, writer, commit)
            finally:
                if writer is not None:
                    writer.close()
            if deferred:
                with connection.begin():
                    indexes.create(connection, deferred)
        progress.seconds = time.perf_counter() - began
        if on_progress is not None:
            on_progress(progress)
        return progress

    def _plan(
        self, scope: Scope, committed: dict[tuple[str, str, int], int], progress: Progress
    ) -> list[tuple[Source, PartitionReader, int, int]]:
        """Each source with its reader and the offsets to read, ``[start, end)``."""
        plan = []
        for source in sources(self.log, scope, self.book_deltas):
            reader = self.log.reader(source.topic, source.partition)
            key = (source.group, source.topic, source.partition)
            start = committed.get(key, reader.start_offset)
            plan.append((source, reader, start, reader.end_offset))
            progress.total += max(0, reader.end_offset - start)
        return plan

    def follow(
        self,
        scope: Scope,
        on_progress: Callable[[Progress], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Progress]:
        """Project ``scope`` again and again as the log grows (new runs included), yielding each
        pass that wrote something, until ``stop()`` or an interrupt."""
        while not stop():
            progress = self.project(scope, on_progress)
            if progress.records or progress.row_count:
                yield progress
            else:
                time.sleep(FOLLOW_PAUSE)

    @staticmethod
    def _defer_indexes(
        connection: Connection, plan: list[tuple[Source, PartitionReader, int, int]]
    ) -> list[str]:
        """On PostgreSQL: create the indexes a dead projection left missing, then drop the
        non-unique indexes of each empty table about to get a big first load (re-created when
        the load is done: one sorted build instead of an update per row); their tables."""
        if connection.dialect.name != "postgresql":
            return []
        planned: dict[str, int] = {}
        for source, _, start, end in plan:
            planned[source.table] = planned.get(source.table, 0) + max(0, end - start)
        with connection.begin():
            indexes.repair(connection)
            big = sorted(t for t, n in planned.items() if n >= indexes.DEFER_ROWS)
            tables = [t for t in big if indexes.is_empty(connection, t)]
            indexes.drop(connection, tables)
        return tables

    # -- transactions ------------------------------------------------------------------------

    @staticmethod
    def _committed(connection: Connection) -> dict[tuple[str, str, int], int]:
        with connection.begin():
            rows = connection.execute(
                sa.select(
                    _OFFSETS.c.consumer_group,
                    _OFFSETS.c.topic,
                    _OFFSETS.c.partition,
                    _OFFSETS.c.next_offset,
                )
            )
            return {(g, t, p): o for g, t, p, o in rows}

    @staticmethod
    def _hand_over(
        pending: _Pending,
        committed: dict[tuple[str, str, int], int],
        writer: Writer[_Pending] | None,
        commit: Callable[[_Pending], None],
    ) -> None:
        """Commit ``pending`` (through ``writer`` if there is one): the next batch of a
        partition starts from where this one ends, committed yet or not (a failure ends the
        whole pass)."""
        if not pending.positions:
            return
        if writer is None:
            commit(pending)
        else:
            pending.encode()
            writer.submit(pending)
        for key, (_, after) in pending.positions.items():
            committed[key] = after

    def _flush(self, connection: Connection, pending: _Pending, progress: Progress) -> None:
        try:
            with connection.begin():
                for key, (before, after) in pending.positions.items():
                    move(connection, key, before, after)
                for table, parts in pending.rows.items():
                    if table == "instruments":
                        rows = [r for p in parts for r in part_rows(p)]
                        parts = [new_instruments(connection, rows)]
                    progress.add(table, write(connection, table, parts))
        except exc.IntegrityError as error:
            reason = " ".join(str(error.orig or error).split())
            raise ProjectError(
                f"the store at {display(self.url)} refused a batch ({reason}). Another "
                "projector may be writing to it: run one `tape project` per store."
            ) from None

    @staticmethod
    def _project_manifest(
        connection: Connection, manifest: RunManifest, progress: Progress
    ) -> None:
        run = {c: getattr(manifest, c, None) for c in COLUMNS["runs"]}
        run.update(code_commit=manifest.code.commit, code_dirty=manifest.code.dirty)
        outputs = [
            {"run_id": manifest.run_id, **{c: getattr(o, c) for c in COLUMNS["run_outputs"][1:]}}
            for o in manifest.outputs
        ]
        reports = trading_report_rows(manifest.run_id, manifest.report.get("trading"))
        with connection.begin():
            where = _RUNS.c.run_id == manifest.run_id
            old = connection.execute(sa.select(_RUNS).where(where)).mappings().first()
            old_outputs = connection.execute(
                sa.select(_OUTPUTS)
                .where(_OUTPUTS.c.run_id == manifest.run_id)
                .order_by(_OUTPUTS.c.port)
            ).mappings()
            old_reports = connection.execute(
                sa.select(sa.func.count()).where(_REPORTS.c.run_id == manifest.run_id)
            ).scalar_one()
            if (
                old is not None
                and dict(old) == run
                and [dict(o) for o in old_outputs] == sorted(outputs, key=lambda o: str(o["port"]))
                and old_reports == len(reports)
            ):
                return
            for table in (_RUNS, _OUTPUTS, _REPORTS):
                connection.execute(sa.delete(table).where(table.c.run_id == manifest.run_id))
            connection.execute(sa.insert(_RUNS), [run])
            if outputs:
                connection.execute(sa.insert(_OUTPUTS), outputs)
            if reports:
                connection.execute(sa.insert(_REPORTS), reports)
        progress.add("runs", 1)
        progress.add("run_outputs", len(outputs))
        progress.add("trading_reports", len(reports))


@dataclass
class _Pending:
    """Rows and positions of the batches not yet committed."""

    rows: Rows = field(default_factory=dict)
    positions: dict[tuple[str, str, int], tuple[int | None, int]] = field(default_factory=dict)
    records: int = 0

    def add(
        self, rows: Rows, key: tuple[str, str, int], committed: int | None, batch: Batch
    ) -> None:
        """Queue one batch's rows and move the partition's position past it."""
        merge(self.rows, rows)
        before = self.positions[key][0] if key in self.positions else committed
        self.positions[key] = (before, batch.next_offset)
        self.records += len(batch)

    def encode(self) -> None:
        """Turn every frame into its binary COPY payload (PostgreSQL), here rather than on the
        writer's thread, which then only talks to the server."""
        for table, parts in self.rows.items():
            self.rows[table] = [pgcopy.encoded(p, PG_TYPES[table]) for p in parts]


def check_schema(url: str) -> None:
    """:class:`ProjectError` unless the store at ``url`` is at the newest migration."""
    reached, newest = migrate.current(url), migrate.head()
    if reached == newest:
        return
    where = display(url)
    if reached is None:
        raise ProjectError(f"the store at {where} has no tables yet: run `tape db upgrade` first")
    raise ProjectError(
        f"the store at {where} is at schema revision {reached}, the projector needs {newest}: "
        "run `tape db upgrade`"
    )
