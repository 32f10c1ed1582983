"""Projection throughput of ``tape project`` into SQLite and PostgreSQL.

Usage: ``.venv/bin/python bench/projector_bench.py [--pg URL] [--repeat N] [--data DIR] [--split]``

Ingests the bundled full Binance spot session (``demo-btcusdt-spot-day``) into a temporary data
directory (or uses ``--data`` if it already holds it), runs the default pipeline over it, then
projects that run (its journal and every derived topic) into a fresh store, with and without
``--book-deltas``: into an SQLite file next to the data, and into a fresh schema of the
PostgreSQL server at ``--pg`` (dropped afterwards). Rows/s is rows written over the wall time
of the projection (reading the log, mapping, COPY or executemany, commits, building deferred
indexes); the fastest of ``--repeat``, then the median and every run's rate. Targets (issue 6):
>= 200 k rows/s PostgreSQL, >= 100 k rows/s SQLite.

``--split`` (PostgreSQL, book deltas on) then times the two halves of the path apart, to show
which one bounds it: the client half (read the log, map, build every COPY payload in memory)
and the server half (COPY those prepared payloads into a fresh store, one transaction per
65,536 rows, on one connection), once with the tables' indexes and once without their
non-unique ones, with the CPU time the server's backend process spent (read from
``/proc/<pid>/stat``: the server runs on this machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.app.store import migrate, pgcopy
from engine.app.store.frame import Frame
from engine.app.store.projector import Progress, Projector, Scope, sources
from engine.app.store.schema import Base
from engine.app.store.sql import PG_TYPES
from engine.log import EmbeddedLog
from engine.runtime.manifest import list_runs
from engine.runtime.runs import execute

SESSION = "demo-btcusdt-spot-day"
SAMPLE = Path(__file__).resolve().parents[1] / "replays/samples/binance_spot_btcusdt_20240808.gz"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def prepare(data: Path) -> str:
    """The id of a default run of the session in ``data``, ingesting and running if needed."""
    log = EmbeddedLog(data)
    if not log.has_topic(f"{SESSION}.journal"):
        result = CliRunner().invoke(
            app,
            ["--data", str(data), "--fsync", "never", "ingest", "binance", str(SAMPLE),
             "--session", SESSION, "--quiet"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    runs = [m for m in list_runs(data) if m.session == SESSION and m.pipeline == "default"]
    if runs:
        return runs[-1].run_id
    return execute(log, SESSION, pipelines=SHIPPED).manifest.run_id


def once(data: Path, url: str, run_id: str, deltas: bool) -> Progress:
    """Project the run into the empty, upgraded store at ``url``."""
    migrate.upgrade(url)
    projector = Projector(EmbeddedLog(data), url, book_deltas=deltas)
    try:
        return projector.project(Scope(run=run_id))
    finally:
        projector.close()


def sqlite_store(base: Path) -> tuple[str, object]:
    path = base / f"bench-{uuid.uuid4().hex[:8]}.sqlite"
    return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)


def pg_store(server: str) -> tuple[str, object]:
    schema = f"tape_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


def payloads(data: Path, run_id: str) -> tuple[list[tuple[str, int, bytes]], float, float]:
    """Every frame of the run's projection (book deltas on) as (table, rows, COPY payload),
    built as the projector builds them; with the wall and CPU seconds it took."""
    log = EmbeddedLog(data)
    wall, cpu = time.perf_counter(), time.process_time()
    out = []
    for source in sources(log, Scope(run=run_id), book_deltas=True):
        reader = log.reader(source.topic, source.partition)
        position = reader.start_offset
        while (batch := reader.read(position, 65536)) is not None and len(batch):
            position = batch.next_offset
            for table, parts in source.mapper(batch).items():
                frames = [p for p in parts if isinstance(p, Frame)]
                out += [(table, len(f), pgcopy.encode(f, PG_TYPES[table])) for f in frames]
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _backend_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def copy_only(url: str, chunks: list[tuple[str, int, bytes]], indexes: bool) -> tuple[float, float]:
    """COPY the prepared ``chunks`` into the fresh store at ``url`` (without its non-unique
    indexes unless ``indexes``), one transaction per 65,536 rows; (wall s, server CPU s)."""
    migrate.upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        if not indexes:
            with connection.begin():
                for schema_table in Base.metadata.tables.values():
                    for index in schema_table.indexes:
                        if not index.unique:
                            connection.execute(sa.text(f'DROP INDEX "{index.name}"'))
        driver = connection.connection.driver_connection
        assert driver is not None
        pid = driver.info.backend_pid
        cpu, wall = _backend_cpu(pid), time.perf_counter()
        done = 0
        for table, n, payload in chunks:
            if done == 0:
                transaction = connection.begin()
            with driver.cursor() as cursor, cursor.copy(f'COPY "{table}" FROM STDIN BINARY') as c:
                c.write(pgcopy.HEADER + payload + pgcopy.TRAILER)
            done += n
            if done >= 65536:
                transaction.commit()
                done = 0
        if done:
            transaction.commit()
        took = time.perf_counter() - wall
        used = _backend_cpu(pid) - cpu
    engine.dispose()
    return took, used


def split(base: Path, run_id: str, server: str, repeat: int) -> None:
    """Print the client half and the server half of the PostgreSQL projection apart."""
    chunks, wall, cpu = payloads(base, run_id)
    rows = sum(n for _, n, _ in chunks)
    size = sum(len(p) for _, _, p in chunks)
    print(f"# client: read + map + build COPY payloads of {rows:,} rows ({size / 1e6:.1f} MB): "
          f"{wall:.3f} s wall, {cpu:.3f} s CPU = {rows / wall:,.0f} rows/s")  # fmt: skip
    for indexes in (True, False):
        results = []
        for _ in range(repeat):
            url, cleanup = pg_store(server)
            try:
                results.append(copy_only(url, chunks, indexes))
            finally:
                cleanup()  # type: ignore[operator]
        took, used = min(results)
        what = "with every index" if indexes else "without the non-unique indexes"
        print(f"# server: COPY of the prepared payloads {what}: {took:.3f} s wall "
              f"= {rows / took:,.0f} rows/s; backend CPU {used:.2f} s "
              f"= {used / rows * 1e6:.2f} us/row")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pg", default=os.environ.get("TAPE_TEST_PG") or PG_URL)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="data directory to reuse")
    parser.add_argument("--split", action="store_true", help="time client and server apart")
    parser.add_argument("--only-pg", action="store_true", help="skip the SQLite rows")
    args = parser.parse_args()
    base = args.data or Path(tempfile.mkdtemp(prefix="tape-bench-", dir=Path(__file__).parent))
    try:
        run_id = prepare(base)
        journal = EmbeddedLog(base).watermarks(f"{SESSION}.journal")[1]
        cpu = platform.processor() or platform.machine()
        print(f"# {datetime.now(UTC):%Y-%m-%d} {platform.node()}: {os.cpu_count()} cores, {cpu}")
        print(f"# run {run_id}: {journal:,} journal records")
        print("| store | book deltas | log records | rows | seconds | rows/s | median | all |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        stores = (("SQLite", lambda: sqlite_store(base)), ("PostgreSQL", None))
        for name, make in stores[1:] if args.only_pg else stores:
            for deltas in (False, True):
                steps: list[Progress] = []
                for _ in range(args.repeat):
                    url, cleanup = make() if make else pg_store(args.pg)
                    try:
                        steps.append(once(base, url, run_id, deltas))
                    finally:
                        cleanup()  # type: ignore[operator]
                rates = sorted(s.row_count / s.seconds for s in steps)
                best = min(steps, key=lambda s: s.seconds)
                every = ", ".join(f"{r / 1e3:.0f}" for r in rates)
                print(
                    f"| {name} | {'on' if deltas else 'off'} | {best.records:,} | "
                    f"{best.row_count:,} | {best.seconds:.2f} | {rates[-1]:,.0f} | "
                    f"{statistics.median(rates):,.0f} | {every} k |",
                    flush=True,
                )
        if args.split:
            split(base, run_id, args.pg, args.repeat)
    finally:
        if args.data is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
