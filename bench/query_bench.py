"""``tape query`` over a day's decisions: how long a read-only analyst query takes.

Run: ``.venv/bin/python bench/query_bench.py [ROWS]`` (default 100,000). It migrates an SQLite
store in a temporary directory and a fresh schema on PostgreSQL (``TAPE_BENCH_PG``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; skipped if unreachable), inserts ROWS
``consensus.decision`` rows spread evenly over one day through the store's model
(``engine.app.store.schema.Decision``), then times, best and median of 5:

1. ``per minute``: count, mean confidence and mean score per minute of event time (1,440
   rows back), the target query (< 1 s);
2. ``all rows``: every column of every row into a DataFrame (the cost of fetching);
3. ``cli csv``: the per-minute query through the ``tape query`` command in process (read-only
   connection, DataFrame, CSV file), i.e. everything but interpreter start-up.

Target (issue 6): a day's decisions answer in under 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.store import migrate
from engine.app.store.query import run_query
from engine.app.store.schema import Decision
from engine.events.decisions import CONTRIBUTORS

DAY_NS = 86_400 * 10**9
T0 = 1_723_075_200 * 10**9  # 2024-08-08 00:00 UTC
PER_MINUTE = (
    "SELECT ts_event / 60000000000 AS minute, count(*) AS decisions, "
    "avg(confidence) AS confidence, avg(score) AS score "
    "FROM decisions WHERE run_id = 'bench' GROUP BY ts_event / 60000000000 ORDER BY minute"
)
ALL_ROWS = "SELECT * FROM decisions"


def rows(n: int) -> list[dict[str, Any]]:
    """``n`` decisions a day long, with seeded random votes, weights and confidences."""
    rng = np.random.default_rng(6)
    ts = T0 + np.linspace(0, DAY_NS - 1, n).astype(np.int64)
    direction = rng.integers(-1, 2, n)
    confidence = rng.random(n)
    out = []
    for i in range(n):
        row: dict[str, Any] = {
            "topic": "run.bench.decisions", "partition": 0, "offset": i, "run_id": "bench",
            "cause": 5 * i, "ts_event": int(ts[i]), "flags": 0, "direction": int(direction[i]),
            "confidence": float(confidence[i]), "score": float(direction[i] * confidence[i]),
            "model_score": float(confidence[i] * 0.6), "agent_score": float(confidence[i] * 0.4),
        }  # fmt: skip
        for who in CONTRIBUTORS:
            row[f"{who}_vote"] = int(direction[i])
            row[f"{who}_weight"] = 1.0 / len(CONTRIBUTORS)
            row[f"{who}_confidence"] = float(confidence[i])
        out.append(row)
    return out


def fill(url: str, data: list[dict[str, Any]]) -> float:
    """Migrate ``url`` and insert ``data`` through the model; seconds taken to insert."""
    migrate.upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    started = time.perf_counter()
    with OrmSession(engine) as session, session.begin():
        for i in range(0, len(data), 20_000):
            session.execute(sa.insert(Decision), data[i : i + 20_000])
    seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE decisions")
    engine.dispose()
    return seconds


def timed(action: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    """(best, median) seconds of ``action``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def measure(name: str, url: str, data: list[dict[str, Any]], out: Path) -> None:
    """Fill the store at ``url`` and print the three timings."""
    inserted = fill(url, data)
    print(f"{name}: inserted {len(data):,} decisions in {inserted:.2f} s")
    minutes = run_query(url, PER_MINUTE).frame
    assert minutes.height == 1440, minutes
    assert int(minutes["decisions"].sum()) == len(data), minutes
    runner = CliRunner()

    def cli() -> None:
        result = runner.invoke(app, ["query", PER_MINUTE, "-f", "csv", "-o", str(out), "--db", url])
        assert result.exit_code == 0, result.output

    cases = {
        "per minute": lambda: run_query(url, PER_MINUTE),
        "all rows": lambda: run_query(url, ALL_ROWS),
        "cli csv": cli,
    }
    for case, action in cases.items():
        best, median = timed(action)
        verdict = "  (target < 1 s)" if case == "per minute" else ""
        print(f"  {case:<11} best {best * 1000:8.1f} ms  median {median * 1000:8.1f} ms{verdict}")


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 100_000
    data = rows(n)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "minutes.csv"
        measure("sqlite", f"sqlite:///{tmp}/store.sqlite", data, out)
        server = (
            os.environ.get("TAPE_BENCH_PG") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
        admin = sa.create_engine(server, poolclass=sa.NullPool)
        schema = f"tape_bench_{uuid.uuid4().hex[:8]}"
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        except sa.exc.OperationalError as error:
            print(f"postgresql: skipped, {server} unreachable ({error.orig})")
            return
        url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            measure("postgresql", url.render_as_string(hide_password=False), data, out)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()


if __name__ == "__main__":
    main(sys.argv)
