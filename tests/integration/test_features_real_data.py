"""The ``features`` processor on the real samples: every feature against a plain reference,
every cadence, slicing/restart independence, clock ticks, and the full shared files."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import decode, encode
from engine.events.control import ClockTicked, SessionClosed
from engine.events.features import F_NO_TRADES, FEATURES_VECTOR
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner
from streams.features import INDEX, NAMES
from tests.features_reference import FeaturesRun, reference_vectors, run_features
from tests.sliced import Chains, resumed_chains, sliced_chains, topology

SESSIONS = ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo")
CADENCES = {
    "book": {"cadence": "book"},
    "trade": {"cadence": "trade"},
    "time": {"cadence": "time", "interval_ms": 250},
}
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def runs(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every sample session run once per cadence, in one go."""
    out = {}
    for session in SESSIONS:
        for cadence, config in CADENCES.items():
            scratch = tmp_path_factory.mktemp(f"{session}-{cadence}")
            out[session, cadence] = run_features(samples_master, session, scratch, config)
    return out


def same(a: float, b: float) -> bool:
    """Equal, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_matches_reference(data: Path, session: str, run: FeaturesRun) -> int:
    """Compare every vector, field and feature with the reference; the count compared."""
    expected = reference_vectors(data, session, run)
    got = run.vectors
    assert len(got) == len(expected), (session, run.settings)
    for vector, ref in zip(got, expected, strict=True):
        assert (int(vector["cause"]), int(vector["ts_event"])) == (ref.cause, ref.ts)
        assert int(vector["flags"]) == ref.flags, (ref.cause, vector["flags"], ref.flags)
        values = vector["values"]
        wrong = {
            name: (float(values[i]), ref.values[name])
            for i, name in enumerate(NAMES)
            if not same(float(values[i]), ref.values[name])
        }
        assert not wrong, f"{session} {run.settings['cadence']} cause {ref.cause}: {wrong}"
        assert int(vector["schema"]) == 1
    return len(got)


@pytest.mark.parametrize("cadence", list(CADENCES))
@pytest.mark.parametrize("session", SESSIONS)
def test_every_feature_matches_the_reference_exactly(
    samples_master: Path, runs: dict, session: str, cadence: str
) -> None:
    """Bit-for-bit: the reference follows the documented definitions in the same float order."""
    run = runs[session, cadence]
    count = assert_matches_reference(samples_master, session, run)
    if session == "demo-wdo" and cadence == "trade":
        assert count == 0  # B3 top of book has no trades
    else:
        assert count > 0


def test_the_reference_comparison_covers_every_feature_with_values(runs: dict) -> None:
    """Each feature is defined (not NaN) somewhere in the compared samples, and no sample
    hides a NaN that is not explained by warm-up or missing data."""
    defined = np.zeros(len(NAMES), bool)
    for session in SESSIONS:
        values = runs[session, "book"].vectors["values"]
        defined |= ~np.isnan(values).all(axis=0)
    assert defined.all(), [n for n, d in zip(NAMES, defined, strict=True) if not d]
    wdo = runs["demo-wdo", "book"].vectors
    assert (wdo["flags"] & F_NO_TRADES).all()
    assert np.isnan(wdo["values"][:, INDEX["volume_5s"]]).all()


def test_cadences_differ_only_in_when_they_emit(runs: dict) -> None:
    """The state never depends on the cadence: where two cadences both emit after the same
    record, the vectors are identical bytes."""
    shared = 0
    for session in SESSIONS:
        seen: dict[int, bytes] = {}
        for cadence in CADENCES:
            for v in runs[session, cadence].vectors:
                cause, raw = int(v["cause"]), v.tobytes()
                if cause in seen:
                    assert seen[cause] == raw, (session, cadence, cause)
                    shared += 1
                else:
                    seen[cause] = raw
    assert shared > 100


def test_time_cadence_fires_once_per_boundary(runs: dict) -> None:
    for session in SESSIONS:
        ts = runs[session, "time"].vectors["ts_event"].astype(np.int64)
        slots = ts // 250_000_000
        assert (np.diff(slots) > 0).all(), session  # never twice in one interval
        assert (np.diff(ts) > 0).all()


def test_trade_cadence_emits_after_each_trade(samples_master: Path, runs: dict) -> None:
    from tests.features_reference import journal_events

    for session in SESSIONS:
        run = runs[session, "trade"]
        trades = [
            e.offset for e in journal_events(samples_master, session, run.tops) if e.kind in (1, 5)
        ]
        assert run.vectors["cause"].tolist() == trades


def test_book_cadence_emits_after_each_top(runs: dict) -> None:
    for session in SESSIONS:
        run = runs[session, "book"]
        assert run.vectors["cause"].tolist() == run.tops["offset"].tolist()


# -- determinism -----------------------------------------------------------------------------


def _chains(
    data: Path, session: str, scratch: Path, cuts: list[int], batch: int, config: RunConfig
) -> Chains:
    return sliced_chains(data, session, scratch, config, cuts, batch)


CONFIGS = {
    c: RunConfig(pipeline="features", stages={"features": cfg}) for c, cfg in CADENCES.items()
}


@pytest.fixture(scope="module")
def chains(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        (session, cadence): _chains(
            samples_master, session, tmp_path_factory.mktemp("c"), [], 65536, config
        )
        for session in SESSIONS
        for cadence, config in CONFIGS.items()
    }


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cadence=st.sampled_from(list(CADENCES)),
    cuts=st.lists(st.integers(0, 14000), max_size=6),
    batch=st.sampled_from([2, 7, 64, 1000, 65536]),
)
def test_features_do_not_depend_on_slicing(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: dict,
    session: str,
    cadence: str,
    cuts: list[int],
    batch: int,
) -> None:
    scratch = tmp_path_factory.mktemp("sliced")
    got = _chains(samples_master, session, scratch, cuts, batch, CONFIGS[cadence])
    assert got == chains[session, cadence]


@pytest.mark.parametrize("session", ["demo-aapl", "demo-btcusdt-usdm", "demo-wdo"])
def test_one_event_at_a_time_gives_identical_bytes(
    samples_master: Path, tmp_path: Path, chains: dict, session: str
) -> None:
    """Live slices of one event against one 64 Ki slice, every cadence, floats included."""
    for cadence, config in CONFIGS.items():
        got = _chains(samples_master, session, tmp_path / cadence, [], 1, config)
        assert got == chains[session, cadence], cadence


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cadence=st.sampled_from(list(CADENCES)),
    every=st.sampled_from([97, 500, 2048]),
    kill_at=st.integers(1, 13000),
)
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chains: dict,
    session: str,
    cadence: str,
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    config = RunConfig(
        pipeline="features", snapshot_every=every, stages={"features": CADENCES[cadence]}
    )
    got = resumed_chains(samples_master, session, scratch, config, kill_at)
    assert got == chains[session, cadence]


def test_snapshot_restore_round_trips_every_bit(samples_master: Path, tmp_path: Path) -> None:
    """Mid-session: snapshot, restore into a fresh stage, snapshot again: the same bytes; and
    inspect() shows the last vector by name."""
    log = EmbeddedLog(samples_master)
    config = RunConfig(pipeline="features")
    built = topology(log, "demo-aapl", config)
    runner = Runner(log, journal_topic("demo-aapl"), EmbeddedLog(tmp_path), "t", built)
    runner.begin()
    runner.advance(stop=700, batch=100)
    runner.close()
    stage = built.stages[-1][1]
    state = stage.snapshot()
    fresh = topology(log, "demo-aapl", config).stages[-1][1]
    fresh.restore(state)
    assert fresh.snapshot() == state
    view = fresh.inspect()
    last = EmbeddedLog(tmp_path).reader("run.t.features").read(0, 10**6)
    assert isinstance(last, FixedBatch)
    vector = last.view(FEATURES_VECTOR.dtype)[-1]
    assert view["last_cause"] == int(vector["cause"]) < 700
    assert list(view)[-len(NAMES) :] == list(NAMES)
    shown = np.array([view[name] for name in NAMES])
    assert np.array_equal(shown, vector["values"], equal_nan=True)
    trade_config = RunConfig(pipeline="features", stages={"features": {"cadence": "trade"}})
    other = topology(log, "demo-aapl", trade_config)
    with pytest.raises(ValueError, match="config"):
        other.stages[-1][1].restore(state)


# -- clock ticks and gaps ----------------------------------------------------------------------


def test_clock_ticks_fire_the_timer_through_a_quiet_period(samples: Path, tmp_path: Path) -> None:
    """A journal that goes quiet but keeps ticking (clock.ticked every second for 70 s): the
    time cadence keeps emitting, caused by the ticks, windows roll over flat bars, and the
    reference agrees on every value."""
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
        ticks = [ClockTicked(ts_event=last_ts + s * 1_000_000_000, ts_recv=0) for s in range(1, 71)]
        writer.append_records([(t.ts_event, None, None, encode(t)) for t in ticks])
    run = run_features(samples, "quiet", tmp_path / "run", {"cadence": "time", "interval_ms": 1000})
    assert_matches_reference(samples, "quiet", run)
    journal_end = log.reader(journal_topic("quiet")).end_offset
    tick_caused = run.vectors[run.vectors["cause"] >= journal_end - 70]
    assert len(tick_caused) == 70
    last = tick_caused[-1]["values"]
    assert last[INDEX["realized_vol_5s"]] == 0.0  # the mid has not moved for over 60 s
    assert last[INDEX["return_60s"]] == 0.0
    assert last[INDEX["stochastic_k_60s"]] == 50.0


# -- the full shared files (when present) ------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_full_shared_files_match_the_reference(tmp_path: Path) -> None:
    """Sessions long enough (6 and 9 minutes) for every window to warm up many times over."""
    from typer.testing import CliRunner

    from engine.app.cli import app

    data = tmp_path / "data"
    commands = [
        [
            "binance",
            str(SHARED / "crypto" / "binance_spot_btcusdt_20240808.gz"),
            "--session",
            "spot",
        ],
        ["b3", str(SHARED / "b3" / "book_data_processed_sample.csv"), "--session", "wdo"],
    ]
    for command in commands:
        result = CliRunner().invoke(
            app, ["--data", str(data), "--fsync", "never", "ingest", *command, "--quiet"]
        )
        assert result.exit_code == 0, result.output
    for session in ("spot", "wdo"):
        run = run_features(data, session, tmp_path / session, {"cadence": "time"})
        assert assert_matches_reference(data, session, run) > 300
        warm = run.vectors[run.vectors["ts_event"] >= run.vectors["ts_event"][0] + 100 * 10**9]
        defined = ~np.isnan(warm["values"]).all(axis=0)
        if session == "spot":  # liquid, with trades and depth: every feature has values
            assert defined.all(), [n for n, d in zip(NAMES, defined, strict=True) if not d]
        shutil.rmtree(tmp_path / session)
