"""Shared pytest configuration for the Tapedeck test suite.

Hypothesis profiles: "ci" is loaded when the CI environment variable is set, "dev" otherwise.
Neither has a deadline, since numba compiles on first call and would trip any per-example limit.

Fixtures ``samples_master`` / ``samples``: the bundled real samples ingested once per test
session, and a private copy of them per test.

Fixture ``postgres_url``: a PostgreSQL URL whose ``search_path`` is a fresh schema of its own,
dropped after the test. The server is ``TAPE_TEST_PG`` (default ``PG_URL``); when it is
unreachable the test is skipped, or FAILS when the ``CI`` environment variable is set.

Fixture ``kafka_target``: the cluster a Kafka test runs on, once on librdkafka's mock cluster
and once on each real broker in ``TAPE_TEST_KAFKA`` (tests/kafka_support.py: skipped without
one, FAILS under ``CI``).
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

settings.register_profile("ci", deadline=None, max_examples=50, derandomize=False, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


SAMPLES = Path(__file__).resolve().parents[1] / "replays" / "samples"
SAMPLE_SESSIONS = (
    "demo-aapl",
    "demo-btcusdt-spot",
    "demo-btcusdt-usdm",
    "demo-wdo",
    "demo-btcusdt-spot-day",
)
"""The sessions ``tape demo`` ingests from the bundled samples (same names, same inputs)."""


def ingest_samples(data: Path) -> None:
    """Ingest the bundled real samples into ``data`` as ``tape demo`` does."""
    from engine.app.cli import app

    s = SAMPLES
    commands = [
        ["ingest", "lobster", str(s / "lobster_AAPL_2012-06-21_message_10.csv.gz"),
         str(s / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz"), "--symbol", "AAPL",
         "--date", "2012-06-21", "--session", "demo-aapl"],
        ["ingest", "binance", str(s / "binance_spot_btcusdt_20240808_head3000.gz"),
         "--session", "demo-btcusdt-spot"],
        ["ingest", "binance", str(s / "binance_usdm_btcusdt_20240808_head3000.gz"),
         "--session", "demo-btcusdt-usdm"],
        ["ingest", "b3", str(s / "b3_wdou25_20250811_head2000.csv.gz"), "--session", "demo-wdo"],
        ["ingest", "binance", str(s / "binance_spot_btcusdt_20240808.gz"),
         "--session", "demo-btcusdt-spot-day"],
    ]  # fmt: skip
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, ["--data", str(data), "--fsync", "never", *command, "--quiet"])
        assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def samples_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the bundled samples ingested, shared read-only by the session."""
    data = tmp_path_factory.mktemp("samples")
    ingest_samples(data)
    return data


@pytest.fixture
def samples(samples_master: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested samples that a test may add runs to."""
    data = tmp_path / "data"
    shutil.copytree(samples_master, data, ignore=shutil.ignore_patterns("writer.lock"))
    return data


@pytest.fixture(scope="session")
def dashboard_demo(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples with a trained bundle, a traded run and a run whose journal was tampered
    with (tests/dashboard_support.py); read-only for the tests that share it."""
    from tests.dashboard_support import build_demo

    return build_demo(samples_master, tmp_path_factory.mktemp("dashboard") / "data")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``kafka_target`` once per Kafka target."""
    if "kafka_target" in metafunc.fixturenames:
        from tests.kafka_support import target_params

        metafunc.parametrize("kafka_target", target_params(), indirect=True, scope="module")


@pytest.fixture(scope="module")
def kafka_target(request: pytest.FixtureRequest) -> object:
    """The cluster of a Kafka test (a ``tests.kafka_support.KafkaTarget``): the mock, then
    each real broker."""
    from tests.kafka_support import open_target

    return open_target(request.param)


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
"""The test PostgreSQL server (trust auth); ``TAPE_TEST_PG`` overrides it."""


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of a reachable PostgreSQL server: skip if there is none, fail if ``CI`` is set."""
    import sqlalchemy as sa

    url = os.environ.get("TAPE_TEST_PG") or PG_URL
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3}, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.OperationalError as error:
        message = f"PostgreSQL at {url} is unreachable ({' '.join(str(error.orig).split())})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI requires it (start it or set TAPE_TEST_PG)")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL on the test server whose objects live in a schema of their own, dropped after."""
    import sqlalchemy as sa

    schema = f"tape_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
