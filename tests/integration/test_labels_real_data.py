"""The ``labels`` processor on the real samples: every label against a plain reference, the
class balance of the defaults, slicing/restart independence, clock ticks, the shared files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import decode, encode
from engine.events.control import ClockTicked, SessionClosed
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic
from engine.runtime import RunConfig
from tests.labels_reference import assert_matches_reference, journal_times, run_labels
from tests.sliced import Chains, resumed_chains, sliced_chains

SESSIONS = ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo")
SETTINGS = {
    "defaults": {},
    "short": {"horizon_ms": 250, "threshold_bp": 0.0},
    "long": {"horizon_ms": 5000, "threshold_bp": 1.0},
}
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


CASES = [(s, "defaults") for s in SESSIONS] + [
    (s, name) for s in ("demo-aapl", "demo-btcusdt-usdm") for name in ("short", "long")
]


@pytest.mark.parametrize(("session", "name"), CASES)
def test_every_label_matches_the_reference_exactly(
    samples_master: Path, tmp_path: Path, session: str, name: str
) -> None:
    run = run_labels(samples_master, session, tmp_path, SETTINGS[name])
    count = assert_matches_reference(run, journal_times(samples_master, session))
    assert count > 100
    causes = run.labels["cause"].astype(np.int64)
    assert (np.diff(run.labels["origin"].astype(np.int64)) > 0).all()  # origin order
    assert (np.diff(causes) >= 0).all()
    # every vector is labelled but those whose horizon the journal never passed
    assert run.labels["origin"].tolist() == run.vectors["cause"][:count].tolist()
    late = run.vectors["ts_event"][count:].astype(np.int64)
    horizon = run.settings["horizon_ms"] * 1_000_000
    assert (late + horizon >= run.labels["ts_event"].max()).all()


def test_defaults_give_every_class_on_every_sample(samples_master: Path, tmp_path: Path) -> None:
    """The per-venue defaults (docs/models.md) leave no class below 15 % on the samples."""
    for session in SESSIONS:
        labels = run_labels(samples_master, session, tmp_path / session).labels
        defined = labels[(labels["flags"] & 1) == 0]["label"]
        shares = [float(np.mean(defined == c)) for c in (-1, 0, 1)]
        assert min(shares) > 0.15, (session, shares)


# -- determinism -----------------------------------------------------------------------------


CONFIG = RunConfig(pipeline="labels")


def _chains(data: Path, session: str, scratch: Path, cuts: list[int], batch: int) -> Chains:
    return sliced_chains(data, session, scratch, CONFIG, cuts, batch)


@pytest.fixture(scope="module")
def chains(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        session: _chains(samples_master, session, tmp_path_factory.mktemp("c"), [], 65536)
        for session in SESSIONS
    }


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cuts=st.lists(st.integers(0, 19000), max_size=6),
    batch=st.sampled_from([2, 7, 64, 1000, 65536]),
)
def test_labels_do_not_depend_on_slicing(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: dict,
    session: str,
    cuts: list[int],
    batch: int,
) -> None:
    got = _chains(samples_master, session, tmp_path_factory.mktemp("sliced"), cuts, batch)
    assert got == chains[session]


@pytest.mark.parametrize("session", ["demo-aapl", "demo-wdo"])
def test_one_event_at_a_time_gives_identical_bytes(
    samples_master: Path, tmp_path: Path, chains: dict, session: str
) -> None:
    assert _chains(samples_master, session, tmp_path, [], 1) == chains[session]


@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    every=st.sampled_from([97, 500, 2048]),
    kill_at=st.integers(1, 18000),
)
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: dict,
    session: str,
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    config = RunConfig(pipeline="labels", snapshot_every=every)
    got = resumed_chains(samples_master, session, scratch, config, kill_at)
    assert got == chains[session]


# -- clock ticks ---------------------------------------------------------------------------------


def test_clock_ticks_mature_the_labels_a_quiet_journal_leaves_pending(
    samples: Path, tmp_path: Path
) -> None:
    """The B3 sample, then 30 s of clock ticks and no market data: the labels of the last
    vectors mature on the ticks (caused by them), and still match the reference."""
    log = EmbeddedLog(samples, FsyncPolicy(FsyncMode.NEVER))
    source = journal_topic("demo-wdo")
    log.create_topic(journal_topic("quiet"), log.config(source))
    last_ts = 0
    with log.writer(journal_topic("quiet")) as writer:
        reader = log.reader(source)
        offset = 0
        while (batch := reader.read(offset, 500)) is not None:
            offset = batch.next_offset
            if isinstance(batch, FixedBatch):
                writer.append_array(batch.records)
                last_ts = max(last_ts, int(batch.view(MARKET_RECORD)["ts_event"].max()))
            else:
                kept = [
                    r
                    for r, v in zip(batch.records, batch.values(), strict=True)
                    if not isinstance(decode(v), SessionClosed)
                ]
                writer.append_records(kept)
        ticks = [ClockTicked(ts_event=last_ts + s * 1_000_000_000, ts_recv=0) for s in range(1, 31)]
        writer.append_records([(t.ts_event, None, None, encode(t)) for t in ticks])
    before = run_labels(samples, "demo-wdo", tmp_path / "before")
    run = run_labels(samples, "quiet", tmp_path / "quiet")
    count = assert_matches_reference(run, journal_times(samples, "quiet"))
    journal_end = log.reader(journal_topic("quiet")).end_offset
    by_ticks = run.labels[run.labels["cause"] >= journal_end - 30]
    assert count == len(run.vectors) > len(before.labels)  # every vector is labelled now
    assert len(by_ticks) == len(run.vectors) - len(before.labels) > 10


# -- the full shared files (when present) ------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_full_shared_files_match_the_reference_with_usable_classes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.app.cli import app

    data = tmp_path / "data"
    commands = [
        ["binance", str(SHARED / "crypto" / "binance_spot_btcusdt_20240808.gz"), "--session", "s"],
        ["b3", str(SHARED / "b3" / "book_data_processed_sample.csv"), "--session", "wdo"],
    ]
    for command in commands:
        result = CliRunner().invoke(
            app, ["--data", str(data), "--fsync", "never", "ingest", *command, "--quiet"]
        )
        assert result.exit_code == 0, result.output
    for session in ("s", "wdo"):
        run = run_labels(data, session, tmp_path / session)
        assert assert_matches_reference(run, journal_times(data, session)) > 1000
        defined = run.labels[(run.labels["flags"] & 1) == 0]["label"]
        assert min(float(np.mean(defined == c)) for c in (-1, 0, 1)) > 0.15
