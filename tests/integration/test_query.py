"""``tape query`` reads, in every format, and the database refuses every write smuggled into it.

Each test runs on an SQLite file and on PostgreSQL (a schema of its own, ``postgres_url``);
rows are written through the store's models (the projector is not needed to test reading).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session as OrmSession
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.store import migrate
from engine.app.store.query import QueryError, ReadOnlyError, run_query
from engine.app.store.schema import Decision, Trade
from engine.events.decisions import CONTRIBUTORS

TABLES = ("trades", "decisions", "alembic_version")
T0 = 1_340_285_400_000_000_000  # 2012-06-21 13:30:00 UTC


def _trade(offset: int, price: int, size: int) -> Trade:
    return Trade(
        topic="demo.journal", partition=0, offset=offset, run_id=None, cause=offset,
        ts_event=T0 + offset * 1_000_000, session="demo", type_id=1, side=1 - 2 * (offset % 2),
        flags=1, ts_recv=T0 + offset * 1_000_000 + 7, price=price, size=size,
        trade_id=1000 + offset, order_id=None,
    )  # fmt: skip


def _decision(offset: int, confidence: float | None) -> Decision:
    decision = Decision(
        topic="run.r1.decisions", partition=0, offset=offset, run_id="r1", cause=offset * 3,
        ts_event=T0 + offset * 1_000_000_000, flags=0, direction=offset % 3 - 1,
        confidence=confidence, score=0.1 * offset, model_score=None, agent_score=-0.5,
    )  # fmt: skip
    for who in CONTRIBUTORS:
        setattr(decision, f"{who}_vote", 0)
    return decision


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated store on each backend with 5 trades and 4 decisions."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    trades = [_trade(i, 5_857_900 + 100 * i, 10 * (i + 1)) for i in range(5)]
    decisions = [_decision(i, None if i == 2 else 0.25 * i) for i in range(4)]
    with OrmSession(engine) as session, session.begin():
        session.add_all([*trades, *decisions])
    engine.dispose()
    return url


def _snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the test tables, read through an ordinary (writable) connection."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        out = {
            name: [tuple(r) for r in connection.execute(sa.text(f"SELECT * FROM {name}"))]
            for name in TABLES
        }
        out["tables"] = [(n,) for n in sorted(sa.inspect(connection).get_table_names())]
    engine.dispose()
    return out


def _query(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["query", *args, "--db", url])
    return result.exit_code, result.output


def _direct(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(sa.text(sql))]
    engine.dispose()
    return rows


SELECT = 'SELECT "offset", price, size, side, session FROM trades ORDER BY "offset"'


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_select_in_each_file_format(store: str, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"result.{fmt}"
    code, output = _query(store, SELECT, "--format", fmt, "--out", str(out))
    assert code == 0, output
    read = {"csv": pl.read_csv, "json": pl.read_json, "parquet": pl.read_parquet}[fmt]
    frame = read(out)
    assert frame.columns == ["offset", "price", "size", "side", "session"]
    assert [tuple(r) for r in frame.iter_rows()] == _direct(store, SELECT)
    assert "wrote 5 rows x 5 columns" in " ".join(output.split())


def test_csv_and_json_go_to_stdout_without_out(store: str) -> None:
    code, output = _query(store, SELECT, "--format", "csv")
    assert code == 0, output
    lines = output.strip().splitlines()
    assert lines[0] == "offset,price,size,side,session"
    assert len(lines) == 6
    code, output = _query(store, 'SELECT confidence FROM decisions ORDER BY "offset"', "-f", "json")
    assert code == 0, output
    assert [r["confidence"] for r in json.loads(output)] == [0.0, 0.25, None, 0.75]


def test_table_output_counts_rows_and_times_the_query(store: str) -> None:
    code, output = _query(store, SELECT)
    assert code == 0, output
    assert "5 rows x 5 columns in " in output
    assert " s" in output.splitlines()[-1]
    for offset, price, *_ in _direct(store, SELECT):
        assert str(price) in output
        assert str(offset) in output


def test_table_output_truncates_long_results(store: str) -> None:
    # 500 rows (a cross join) and all ~30 decision columns: both are cut, and it says so.
    code, output = _query(store, "SELECT d.* FROM decisions d, trades t, trades u, trades v")
    assert code == 0, output
    width = len(_direct(store, "SELECT * FROM decisions LIMIT 1")[0])
    flat = " ".join(output.split())
    assert f"500 rows x {width} columns, showing the first 50" in flat
    assert f"{width - 12} more columns not shown" in flat


def test_the_api_returns_a_frame(store: str) -> None:
    result = run_query(store, "SELECT count(*) AS n, sum(size) AS total FROM trades")
    assert result.frame.to_dicts() == [{"n": 5, "total": 150}]
    assert result.seconds > 0
    with pytest.raises(QueryError, match="query failed") as caught:
        run_query(store, "SELECT * FROM no_such_table")
    assert not isinstance(caught.value, ReadOnlyError)


INSERT = (
    'INSERT INTO trades (topic, partition, "offset", run_id, cause, ts_event, session, type_id, '
    "side, flags, ts_recv, price, size, trade_id, order_id) "
    'SELECT topic, partition, "offset" + 100, run_id, cause, ts_event, session, type_id, side, '
    "flags, ts_recv, price, size, trade_id, order_id FROM trades"
)
WRITES = [
    "SELECT 1; DROP TABLE trades",
    "SELECT count(*) FROM trades; DELETE FROM trades",
    "DELETE FROM trades",
    "WITH d AS (DELETE FROM trades RETURNING *) SELECT * FROM d",
    INSERT,
    "UPDATE trades SET price = 0",
    "CREATE TABLE smuggled (x INTEGER)",
    "DROP TABLE decisions",
]


@pytest.mark.parametrize("sql", WRITES)
def test_a_smuggled_write_is_refused_and_changes_nothing(store: str, sql: str) -> None:
    before = _snapshot(store)
    code, output = _query(store, sql)
    assert code == 2, output
    flat = " ".join(output.split())
    if store.startswith("sqlite") and sql.startswith("WITH"):
        # SQLite has no data-modifying CTEs: the statement does not even parse.
        assert 'near "DELETE": syntax error' in flat
    else:
        assert "error: read-only:" in flat
    assert "Traceback" not in output
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    "sql",
    [
        "DO $$ BEGIN DELETE FROM trades; END $$",
        "COMMIT; DELETE FROM trades",
        "SET TRANSACTION READ WRITE; DELETE FROM trades",
        "SELECT * FROM trades FOR UPDATE",
    ],
)
def test_postgresql_transaction_tricks_are_refused(postgres_url: str, sql: str) -> None:
    migrate.upgrade(postgres_url)
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with OrmSession(engine) as session, session.begin():
        session.add(_trade(0, 100, 1))
    engine.dispose()
    before = _snapshot(postgres_url)
    code, output = _query(postgres_url, sql)
    assert code == 2, output
    assert "error: read-only:" in " ".join(output.split())
    assert _snapshot(postgres_url) == before


@pytest.mark.parametrize("sql", ["ATTACH DATABASE '{dir}/x.db' AS x", "VACUUM INTO '{dir}/x.db'"])
def test_sqlite_cannot_attach_or_copy_out(tmp_path: Path, sql: str) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    migrate.upgrade(url)
    code, output = _query(url, sql.format(dir=tmp_path))
    assert code == 2, output
    assert "error: read-only:" in " ".join(output.split())
    assert not (tmp_path / "x.db").exists()


def test_sqlite_pragma_writes_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    migrate.upgrade(url)
    for sql in ("PRAGMA user_version = 7", "PRAGMA journal_mode = WAL"):
        code, output = _query(url, sql)
        assert code == 2, output
        assert "error: read-only:" in " ".join(output.split())
    assert _direct(url, "PRAGMA user_version") == [(0,)]
    assert _direct(url, "PRAGMA journal_mode") == [("delete",)]
    # Turning query_only off lasts for that one statement's connection: nothing to exploit.
    assert _query(url, "PRAGMA query_only = OFF")[0] == 0


def test_default_store_is_the_sqlite_file_in_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    missing = runner.invoke(app, ["--data", str(data), "query", "SELECT 1"], env={"TAPE_DB": ""})
    assert missing.exit_code == 2
    assert "no store at" in " ".join(missing.output.split())
    assert not (data / migrate.STORE_FILE).exists()  # reading never creates the store
    data.mkdir()
    migrate.upgrade(migrate.default_url(data))
    result = runner.invoke(
        app, ["--data", str(data), "query", "SELECT count(*) AS n FROM trades", "-f", "csv"],
        env={"TAPE_DB": ""},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "n\n0\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "xml"], "--format must be one of"),
        (["--format", "parquet"], "give --out"),
    ],
)
def test_bad_options_are_explained(tmp_path: Path, args: list[str], expected: str) -> None:
    code, output = _query(f"sqlite:///{tmp_path / 's.sqlite'}", "SELECT 1", *args)
    assert code == 2
    assert expected in " ".join(output.split())


# --- the PostgreSQL reader role ------------------------------------------------------------------


@pytest.fixture
def reader_role(postgres_url: str) -> Iterator[str]:
    """A fresh role name, dropped (with its grants) after the test."""
    name = f"tape_reader_{uuid.uuid4().hex[:8]}"
    yield name
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with admin.begin() as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}
        ).first()
        if exists:
            connection.exec_driver_sql(f"DROP OWNED BY {name}")
            connection.exec_driver_sql(f"DROP ROLE {name}")
    admin.dispose()


def test_reader_role_can_select_and_nothing_else(postgres_url: str, reader_role: str) -> None:
    migrate.upgrade(postgres_url)
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with OrmSession(engine) as session, session.begin():
        session.add_all([_trade(0, 100, 1), _trade(1, 101, 2)])
    result = CliRunner().invoke(
        app, ["db", "create-reader-role", reader_role, "--db", postgres_url]
    )
    assert result.exit_code == 0, result.output
    assert f"role {reader_role} created" in result.output
    # A table created after the role (a later migration) is readable too: default privileges.
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE later (x INTEGER)")
        connection.exec_driver_sql("INSERT INTO later VALUES (42)")
    engine.dispose()
    role_url = sa.make_url(postgres_url).set(username=reader_role)
    as_reader = role_url.render_as_string(hide_password=False)
    assert _query(as_reader, "SELECT count(*) AS n FROM trades", "-f", "csv")[1] == "n\n2\n"
    assert _query(as_reader, "SELECT x FROM later", "-f", "csv")[1] == "x\n42\n"
    before = _snapshot(postgres_url)
    # Outside tape query, on a plain autocommit connection, the role still cannot write.
    import psycopg

    params = sa.make_url(as_reader)
    conninfo = (
        f"host={params.host} port={params.port} dbname={params.database} user={reader_role} "
        f"options={params.query['options']}"
    )
    with psycopg.connect(conninfo, autocommit=True) as connection:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            connection.execute("DELETE FROM trades")
        connection.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("DELETE FROM trades")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("CREATE TABLE mine (x INTEGER)")
    assert _snapshot(postgres_url) == before


def test_reader_role_is_refused_on_sqlite_and_for_bad_names(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    result = runner.invoke(app, ["db", "create-reader-role", "reader", "--db", url])
    assert result.exit_code == 2
    assert "an SQLite store has no roles" in " ".join(result.output.split())
    pg = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    result = runner.invoke(app, ["db", "create-reader-role", "Robert'); DROP", "--db", pg])
    assert result.exit_code == 2
    assert "invalid role name" in " ".join(result.output.split())
