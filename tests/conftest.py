"""Shared pytest configuration for the Tapedeck test suite.

Hypothesis profiles: "ci" is loaded when the CI environment variable is set, "dev" otherwise.
Neither has a deadline, since numba compiles on first call and would trip any per-example limit.

Fixtures ``samples_master`` / ``samples``: the bundled real samples ingested once per test
session, and a private copy of them per test.
"""

import os
import shutil
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
    from engine.cli import app

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
