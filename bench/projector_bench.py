"""Projection throughput of ``tape project`` into SQLite and PostgreSQL.

Usage: ``.venv/bin/python bench/projector_bench.py [--pg URL] [--repeat N] [--data DIR]``

Ingests the bundled full Binance spot session (``demo-btcusdt-spot-day``) into a temporary data
directory (or uses ``--data`` if it already holds it), runs the default pipeline over it, then
projects that run (its journal and every derived topic) into a fresh store, with and without
``--book-deltas``: into an SQLite file next to the data, and into a fresh schema of the
PostgreSQL server at ``--pg`` (dropped afterwards). Rows/s is rows written over the wall time
of the projection (reading the log, mapping, COPY or executemany, commits); best of
``--repeat``. Targets (issue 6): >= 200 k rows/s PostgreSQL, >= 100 k rows/s SQLite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.app.store import migrate
from engine.app.store.projector import Progress, Projector, Scope
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pg", default=os.environ.get("TAPE_TEST_PG") or PG_URL)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="data directory to reuse")
    args = parser.parse_args()
    base = args.data or Path(tempfile.mkdtemp(prefix="tape-bench-", dir=Path(__file__).parent))
    try:
        run_id = prepare(base)
        journal = EmbeddedLog(base).watermarks(f"{SESSION}.journal")[1]
        cpu = platform.processor() or platform.machine()
        print(f"# {datetime.now(UTC):%Y-%m-%d} {platform.node()}: {os.cpu_count()} cores, {cpu}")
        print(f"# run {run_id}: {journal:,} journal records")
        print("| store | book deltas | log records | rows | seconds | rows/s |")
        print("|---|---|---:|---:|---:|---:|")
        for name, make in (("SQLite", lambda: sqlite_store(base)), ("PostgreSQL", None)):
            for deltas in (False, True):
                best: Progress | None = None
                for _ in range(args.repeat):
                    url, cleanup = make() if make else pg_store(args.pg)
                    try:
                        step = once(base, url, run_id, deltas)
                    finally:
                        cleanup()  # type: ignore[operator]
                    if best is None or step.seconds < best.seconds:
                        best = step
                assert best is not None
                print(
                    f"| {name} | {'on' if deltas else 'off'} | {best.records:,} | "
                    f"{best.row_count:,} | {best.seconds:.2f} | "
                    f"{best.row_count / best.seconds:,.0f} |",
                    flush=True,
                )
    finally:
        if args.data is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
