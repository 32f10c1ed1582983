"""The event store's schema: migrations create it, agree with the models, and re-run as no-ops.

Every test runs on an SQLite file and on PostgreSQL (a schema of its own, see the
``postgres_url`` fixture), except the CLI error cases, which need no server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session as OrmSession
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.store import migrate
from engine.app.store.schema import LOG_COLUMNS, Base, FeatureVector, LogRow, Trade
from streams.features.schema import NAMES


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _differences(url: str, metadata: sa.MetaData) -> list[object]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_creates_every_table(store_url: str) -> None:
    assert migrate.current(store_url) is None
    assert migrate.upgrade(store_url) == migrate.head()
    engine = sa.create_engine(store_url, poolclass=sa.NullPool)
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == {*Base.metadata.tables, "alembic_version"}
    log_tables = [m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, LogRow)]
    # All but runs, run_outputs and trading_reports (from manifests) and consumer_offsets.
    assert len(log_tables) == len(Base.metadata.tables) - 4
    for name in log_tables:
        columns = [c["name"] for c in inspector.get_columns(name)]
        assert tuple(columns[: len(LOG_COLUMNS)]) == LOG_COLUMNS, name
        key = inspector.get_pk_constraint(name)["constrained_columns"]
        assert key == ["topic", "partition", "offset"], name
    features = [c["name"] for c in inspector.get_columns("feature_vectors")]
    assert tuple(features[-len(NAMES) :]) == NAMES
    engine.dispose()


def test_models_and_migrations_agree(store_url: str) -> None:
    migrate.upgrade(store_url)
    assert _differences(store_url, Base.metadata) == []
    # The comparison is not vacuous: against no models, every migrated table is extra.
    diffs = _differences(store_url, sa.MetaData())
    removed = {d[1].name for d in diffs if d[0] == "remove_table"}  # type: ignore[index]
    assert removed == set(Base.metadata.tables)


def test_upgrade_twice_is_a_no_op_and_keeps_rows(store_url: str) -> None:
    head = migrate.upgrade(store_url)
    engine = sa.create_engine(store_url, poolclass=sa.NullPool)
    # A journal trade and a feature vector with one feature set, written through the models.
    trade = Trade(
        topic="demo.journal", partition=0, offset=7, run_id=None, cause=7, ts_event=10**18,
        session="demo", type_id=1, side=1, flags=1, ts_recv=10**18 + 5, price=6012345,
        size=3, trade_id=991, order_id=None,
    )  # fmt: skip
    vector = FeatureVector(
        topic="run.r1.features", partition=0, offset=0, run_id="r1", cause=7, ts_event=10**18,
        flags=1, schema=1,
    )  # fmt: skip
    setattr(vector, NAMES[0], 1.25)
    with OrmSession(engine) as session, session.begin():
        session.add_all([trade, vector])
    assert migrate.upgrade(store_url) == head
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        row = connection.execute(sa.text("SELECT price, trade_id FROM trades")).one()
        assert tuple(row) == (6012345, 991)
        got = connection.execute(sa.text(f"SELECT {NAMES[0]}, {NAMES[1]} FROM feature_vectors"))
        assert tuple(got.one()) == (1.25, None)
    engine.dispose()
    assert _differences(store_url, Base.metadata) == []


def test_cli_db_upgrade_on_the_default_sqlite_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    first = runner.invoke(app, ["--data", str(data), "db", "upgrade"], env={"TAPE_DB": ""})
    assert first.exit_code == 0, first.output
    head = migrate.head()
    assert f"upgraded from empty to revision {head}" in first.output
    store = data / migrate.STORE_FILE
    assert store.is_file()
    assert migrate.current(f"sqlite:///{store}") == head
    again = runner.invoke(app, ["--data", str(data), "db", "upgrade"], env={"TAPE_DB": ""})
    assert again.exit_code == 0, again.output
    assert f"already at revision {head}" in again.output


def test_cli_db_upgrade_takes_the_url_from_tape_db(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.sqlite"
    result = CliRunner().invoke(
        app,
        ["--data", str(tmp_path / "data"), "db", "upgrade"],
        env={"TAPE_DB": f"sqlite:///{other}"},
    )
    assert result.exit_code == 0, result.output
    assert other.is_file()
    assert not (tmp_path / "data" / migrate.STORE_FILE).exists()


def test_cli_db_upgrade_on_postgresql(postgres_url: str) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", postgres_url])
    assert result.exit_code == 0, result.output
    assert migrate.current(postgres_url) == migrate.head()
    assert "postgresql+psycopg://" in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "bad database URL"),
        ("nosuchdb://host/db", "bad database URL"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "Check that the server is running"),
        ("sqlite:////nonexistent-dir/deeper/store.sqlite", "Check that the directory exists"),
    ],
)
def test_cli_db_upgrade_explains_a_bad_or_unreachable_store(url: str, expected: str) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", url])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
