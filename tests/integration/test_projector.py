"""The projector fills the store from the log exactly once, on SQLite and PostgreSQL.

The data: the bundled samples' journals and a default-pipeline run of the full Binance spot
session (it trades, so orders and executions have rows). Expected counts and values are read
from the log here, with the catalogue's decoder, not through the projector's own mapping.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.pipelines import SHIPPED
from engine.app.store import migrate
from engine.app.store.projector import Projector, Scope, sessions, sources
from engine.app.store.rows import part_rows
from engine.app.store.schema import Base
from engine.events import decode, type_of
from engine.events.control import SessionOpened
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime.manifest import RunManifest, read_manifest
from engine.runtime.runs import execute
from streams.features.schema import NAMES

ROOT = Path(__file__).resolve().parents[2]
SESSION = "demo-btcusdt-spot-day"
CONTROL = {
    "session.closed",
    "control.halt_trading",
    "control.resume_trading",
    "feed.trading_status_changed",
}
FRAME_TABLES = ("book_deltas", "trades", "top_of_book", "mids", "feature_vectors", "labels",
                "predictions", "votes", "decisions", "portfolio_states")  # fmt: skip
"""The tables whose rows travel as numpy frames (binary COPY built by engine.app.store.pgcopy)."""
RUN_TABLES = {
    "book": "top_of_book",
    "mid": "mids",
    "features": "feature_vectors",
    "labels": "labels",
    "predictions": "predictions",
    "votes": "votes",
    "decisions": "decisions",
    "risk": "risk_events",
    "orders": "orders",
    "executions": "executions",
    "portfolio": "portfolio_states",
    "switches": "model_switches",
}


@pytest.fixture(scope="module")
def demo(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The samples with a default run of the full spot session: (data directory, run id)."""
    data = tmp_path_factory.mktemp("projector") / "data"
    shutil.copytree(samples_master, data, ignore=shutil.ignore_patterns("writer.lock"))
    run = execute(EmbeddedLog(data), SESSION, pipelines=SHIPPED).manifest
    assert EmbeddedLog(data).watermarks(f"run.{run.run_id}.executions")[1], "it should trade"
    return data, run.run_id


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An upgraded, empty store on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    return url


# --- what the log says -----------------------------------------------------------------------


def _records(log: EmbeddedLog, topic: str) -> list[tuple[int, Any]]:
    """(offset, decoded event) of every record of ``topic`` (the catalogue's decoder)."""
    reader, out, offset = log.reader(topic), [], 0
    while (batch := reader.read(offset)) is not None:
        out += [(batch.base_offset + i, decode(v)) for i, v in enumerate(batch.values())]
        offset = batch.next_offset
    return out


def _market(event: Any) -> Any:
    return np.frombuffer(event.tobytes(), dtype=MARKET_RECORD)[0]


def expected_counts(
    log: EmbeddedLog, names: list[str], runs: list[RunManifest], deltas: bool = False
) -> Counter[str]:
    """Rows per table that projecting sessions ``names`` and ``runs`` must give, from the log."""
    counts: Counter[str] = Counter()
    instruments = set()
    for session in names:
        reader, offset = log.reader(journal_topic(session)), 0
        while (batch := reader.read(offset)) is not None:
            offset = batch.next_offset
            if isinstance(batch, FixedBatch):
                kinds = batch.view(MARKET_RECORD)["type_id"]
                counts["trades"] += int(np.isin(kinds, (1, 5)).sum())
                counts["book_deltas"] += deltas * int(np.isin(kinds, (2, 3, 4, 6, 8)).sum())
                continue
            for event in map(decode, batch.values()):
                name = type_of(event).name
                counts["control_events"] += name in CONTROL
                counts["gaps"] += name == "feed.gap_detected"
                counts["model_events"] += name.startswith("model.")
                if isinstance(event, SessionOpened):
                    counts["sessions"] += 1
                    instruments.add((event.instrument.venue, event.instrument.symbol))
        counts["quarantine"] += log.watermarks(f"{session}.quarantine")[1]
    counts["instruments"] = len(instruments)
    for run in runs:
        counts["runs"] += 1
        counts["run_outputs"] += len(run.outputs)
        trading = run.report.get("trading") or {}
        windows = [trading.get("out_of_sample"), trading.get("in_sample")]
        counts["trading_reports"] += sum(w is not None for w in windows)
        counts["trading_reports"] += len(trading.get("bundles", []))
        for port, table in RUN_TABLES.items():
            counts[table] += log.watermarks(f"run.{run.run_id}.{port}")[1]
    return +counts


def table_counts(url: str) -> Counter[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        counts = Counter(
            {
                name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                for name, table in Base.metadata.tables.items()
                if name != "consumer_offsets"
            }
        )
    engine.dispose()
    return +counts


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projected table, in key order."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    out = {}
    with engine.connect() as connection:
        for name, table in Base.metadata.tables.items():
            if name != "consumer_offsets":
                query = sa.select(table).order_by(*table.primary_key.columns)
                out[name] = [tuple(r) for r in connection.execute(query)]
    engine.dispose()
    return out


def indexes_in(url: str) -> set[str]:
    """Names of the indexes (keys excluded) the database has on the schema's tables."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    inspector = sa.inspect(engine)
    names = {str(i["name"]) for t in Base.metadata.tables for i in inspector.get_indexes(t)}
    engine.dispose()
    return names


def _one(url: str, sql: str, **params: Any) -> Any:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        row = connection.execute(sa.text(sql), params).mappings().one()
    engine.dispose()
    return row


def _same(stored: Any, logged: float) -> bool:
    return stored is None if math.isnan(logged) else stored == logged


# --- tests ------------------------------------------------------------------------------------


def test_projecting_everything_equals_the_log_and_again_adds_nothing(
    demo: tuple[Path, str], store: str
) -> None:
    data, run_id = demo
    log = EmbeddedLog(data)
    projector = Projector(log, store, batch=20_000)
    first = projector.project(Scope())
    runs = [read_manifest(data, run_id)]
    expected = expected_counts(log, sessions(log), runs)
    assert table_counts(store) == expected
    assert +Counter(first.rows) == expected
    again = projector.project(Scope())
    assert again.row_count == 0
    assert again.records == 0
    assert projector.project(Scope(run=run_id)).row_count == 0
    projector.close()
    assert table_counts(store) == expected

    # A feature vector still warming up: NaN features are NULL, the others equal the log.
    vectors = _records(log, f"run.{run_id}.features")
    offset, vector = next((o, v) for o, v in vectors if np.isnan(v["values"]).any())
    row = _one(store, 'SELECT * FROM feature_vectors WHERE run_id = :r AND "offset" = :o',
               r=run_id, o=offset)  # fmt: skip
    assert row["cause"] == int(vector["cause"])
    assert row["ts_event"] == int(vector["ts_event"])
    assert all(_same(row[n], float(v)) for n, v in zip(NAMES, vector["values"], strict=True))
    assert any(row[n] is None for n in NAMES)

    # The decision, votes and prediction behind the same journal offset share its cause.
    decisions = _records(log, f"run.{run_id}.decisions")
    offset, decision = decisions[len(decisions) // 2]
    row = _one(store, 'SELECT * FROM decisions WHERE run_id = :r AND "offset" = :o',
               r=run_id, o=offset)  # fmt: skip
    assert (row["cause"], row["direction"]) == (int(decision["cause"]), int(decision["direction"]))
    assert _same(row["online_weight"], float(decision["weights"][1]))
    linked = _one(
        store,
        "SELECT count(*) AS n FROM decisions d JOIN votes v ON v.run_id = d.run_id AND "
        "v.cause = d.cause JOIN feature_vectors f ON f.run_id = d.run_id AND f.cause = d.cause "
        "WHERE d.run_id = :r",
        r=run_id,
    )
    assert linked["n"] == len(decisions)

    # An order and a fill, field by field.
    orders = [(o, e) for o, e in _records(log, f"run.{run_id}.orders")
              if type_of(e).name == "orders.order_submitted"]  # fmt: skip
    offset, order = orders[0]
    row = _one(store, 'SELECT * FROM orders WHERE run_id = :r AND "offset" = :o',
               r=run_id, o=offset)  # fmt: skip
    assert (row["kind"], row["order_type"], row["order_id"], row["price"], row["size"]) == (
        "orders.order_submitted", order.kind, order.order_id, order.price, order.size)  # fmt: skip
    assert row["cause"] == order.cause
    assert row["reason"] is None
    fills = [(o, e) for o, e in _records(log, f"run.{run_id}.executions")
             if type_of(e).name == "executions.order_filled"]  # fmt: skip
    offset, fill = fills[-1]
    row = _one(store, 'SELECT * FROM executions WHERE run_id = :r AND "offset" = :o',
               r=run_id, o=offset)  # fmt: skip
    assert (row["order_id"], row["price"], row["fee"], row["liquidity"]) == (
        fill.order_id, fill.price, fill.fee, fill.liquidity)  # fmt: skip

    # A journal trade, and the run's manifest.
    trades = [(o, _market(e)) for o, e in _records(log, journal_topic(SESSION))
              if not isinstance(e, msgspec.Struct) and _market(e)["type_id"] == 1]  # fmt: skip
    offset, trade = trades[100]
    row = _one(store, 'SELECT * FROM trades WHERE session = :s AND "offset" = :o',
               s=SESSION, o=offset)  # fmt: skip
    assert (row["cause"], row["price"], row["size"], row["trade_id"], row["order_id"]) == (
        offset, int(trade["price"]), int(trade["size"]), int(trade["id"]), None)  # fmt: skip
    manifest = runs[0]
    row = _one(store, "SELECT * FROM runs WHERE run_id = :r", r=run_id)
    assert (row["outputs_hash"], row["journal_stop"]) == (
        manifest.outputs_hash, manifest.journal_stop)  # fmt: skip

    # The trading report: the out-of-sample window beside its baselines, as the manifest has it.
    oos = manifest.report["trading"]["out_of_sample"]
    row = _one(store, "SELECT * FROM trading_reports WHERE run_id = :r AND sample = :s",
               r=run_id, s="out-of-sample")  # fmt: skip
    assert (row["window"], row["net_pnl"], row["fills"]) == (
        "out-of-sample", oos["account"]["net_pnl"], oos["account"]["fills"])  # fmt: skip
    assert _same(row["buy_and_hold_pnl"], oos["baselines"]["buy_and_hold"])
    assert bool(row["beats_no_trade"]) == oos["baselines"]["beats_no_trade"]


def test_book_deltas_are_off_by_default_and_back_fill_when_switched_on(
    demo: tuple[Path, str], store: str
) -> None:
    log = EmbeddedLog(demo[0])
    scope = Scope(session="demo-aapl")
    plain = Projector(log, store)
    plain.project(scope)
    plain.close()
    assert "book_deltas" not in table_counts(store)
    deltas = Projector(log, store, book_deltas=True)
    step = deltas.project(scope)
    deltas.close()
    events = [_market(e) for _, e in _records(log, journal_topic("demo-aapl"))
              if not isinstance(e, msgspec.Struct)]  # fmt: skip
    kinds = Counter(int(e["type_id"]) for e in events)
    assert step.rows == {"book_deltas": sum(kinds[k] for k in (2, 3, 4, 6, 8))}
    first = next(e for e in events if e["type_id"] == 2)
    row = _one(store, 'SELECT * FROM book_deltas WHERE type_id = 2 ORDER BY "offset" LIMIT 1')
    assert (row["price"], row["size"], row["venue_id"], row["side"]) == (
        int(first["price"]), int(first["size"]), int(first["id"]), int(first["side"]))  # fmt: skip


def test_cli_project_reports_rows_and_refuses_what_it_cannot_do(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    data, run_id = demo
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()

    def tape(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--data", str(data), "project", *args, "--db", url])
        return result.exit_code, " ".join(result.output.split())

    code, out = tape(run_id)
    assert code == 2
    assert "run `tape db upgrade`" in out
    migrate.upgrade(url)
    code, out = tape("nope")
    assert code == 2
    assert "no run 'nope'" in out
    assert run_id in out
    code, out = tape("--session", "nope")
    assert code == 2
    assert "no session 'nope'" in out
    code, out = tape()
    assert code == 2
    assert "a RUN, --session NAME or --all" in out
    code, out = tape(run_id, "--quiet")
    assert code == 0, out
    decisions = EmbeddedLog(data).watermarks(f"run.{run_id}.decisions")[1]
    assert f"decisions {decisions:,}" in out
    assert "rows/s" in out
    code, out = tape(run_id, "--quiet")
    assert code == 0
    assert "0 rows from 0 log records" in out


def test_sigkilled_projector_resumes_to_the_same_rows(
    demo: tuple[Path, str], store: str, tmp_path: Path
) -> None:
    data, run_id = demo
    args = [run_id, "--batch", "2000", "--db", store, "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from engine.app.cli import main; main()", "--data", str(data)]
    proc = subprocess.Popen([*command, "project", *args], env=env, cwd=ROOT)
    engine = sa.create_engine(store, poolclass=sa.NullPool)
    offsets = Base.metadata.tables["consumer_offsets"]
    deadline = time.monotonic() + 120
    committed = 0
    while committed < 20_000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        with engine.connect() as connection:
            total = sa.select(sa.func.coalesce(sa.func.sum(offsets.c.next_offset), 0))
            committed = connection.execute(total).scalar() or 0
    assert proc.poll() is None, "the projector finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    engine.dispose()
    declared = {str(i.name) for t in Base.metadata.tables.values() for i in t.indexes}
    if store.startswith("postgresql"):
        # Killed during a deferred first load: the big tables' secondary indexes are missing.
        lost = declared - indexes_in(store)
        assert "ix_trades_session_ts_event" in lost
    reference = f"sqlite:///{tmp_path / 'reference.sqlite'}"
    migrate.upgrade(reference)
    whole = Projector(EmbeddedLog(data), reference)
    whole.project(Scope(run=run_id))
    whole.close()
    partial = table_counts(store)
    assert sum(partial.values()) < sum(table_counts(reference).values())
    finished = subprocess.run([*command, "project", *args], env=env, cwd=ROOT, check=False)
    assert finished.returncode == 0
    expected = expected_counts(EmbeddedLog(data), [SESSION], [read_manifest(data, run_id)])
    assert table_counts(store) == expected
    assert dump(store) == dump(reference)
    assert indexes_in(store) == declared, "the next run re-creates every index"


def test_migrating_a_revision_0001_store_with_rows_keeps_them(
    demo: tuple[Path, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for url in (f"sqlite:///{tmp_path / 'old.sqlite'}", request.getfixturevalue("postgres_url")):
        assert migrate.upgrade(url, "0001") == "0001"
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO trades (topic, partition, "offset", run_id, cause, ts_event, '
                    "session, type_id, side, flags, ts_recv, price, size, trade_id, order_id) "
                    "VALUES ('x.journal', 0, 3, NULL, 3, 10, 'x', 1, 1, 1, 11, 600, 2, 77, NULL)"
                )
            )
        with pytest.raises(migrate.StoreError, match="tape db upgrade"):
            Projector(EmbeddedLog(demo[0]), url)
        assert migrate.upgrade(url) == migrate.head() == "0003"
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT price, trade_id FROM trades")).all()
            assert [tuple(r) for r in rows] == [(600, 77)]
            empty = connection.execute(sa.text("SELECT count(*) FROM consumer_offsets")).scalar()
            assert empty == 0
        engine.dispose()
        projector = Projector(EmbeddedLog(demo[0]), url)
        step = projector.project(Scope(session="demo-aapl"))
        projector.close()
        assert step.rows["trades"] > 0
        assert table_counts(url)["trades"] == step.rows["trades"] + 1


def test_postgresql_copy_from_frames_equals_row_by_row_inserts(
    demo: tuple[Path, str], postgres_url: str, postgres_server: str
) -> None:
    """Every row the numpy-built binary COPY wrote (book deltas on) equals the same mappers' rows
    inserted one by one with SQLAlchemy's ``insert`` into a second schema of the same server."""
    data, run_id = demo
    migrate.upgrade(postgres_url)
    projector = Projector(EmbeddedLog(data), postgres_url, book_deltas=True)
    projector.project(Scope(run=run_id))
    projector.close()
    schema = f"tape_test_rows_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_server, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    plain = url.render_as_string(hide_password=False)
    try:
        migrate.upgrade(plain)
        log = EmbeddedLog(data)
        engine = sa.create_engine(plain, poolclass=sa.NullPool)
        copied = Counter(table_counts(postgres_url))
        with engine.begin() as connection:
            for source in sources(log, Scope(run=run_id), book_deltas=True):
                reader, offset = log.reader(source.topic, source.partition), 0
                while (batch := reader.read(offset)) is not None:
                    offset = batch.next_offset
                    for name, parts in source.mapper(batch).items():
                        table = Base.metadata.tables[name]
                        for part in parts:
                            rows = [dict(zip(table.columns.keys(), r, strict=True))
                                    for r in part_rows(part)]  # fmt: skip
                            if rows:
                                connection.execute(sa.insert(table), rows)
        engine.dispose()
        mapped = dump(plain)
        got = dump(postgres_url)
        for name in FRAME_TABLES:
            assert copied[name] > 0, name
            assert got[name] == mapped[name], name
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
