"""The ``agents`` processor on the real samples: every vote against a plain reference, which
rules fire where, what happens without trades, slicing/restart independence, the full files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import decode, encode
from engine.events.book import BOOK_TOP_DTYPE
from engine.events.control import ClockTicked, SessionClosed
from engine.events.decisions import AGENTS, VOTES
from engine.events.features import FEATURES_VECTOR
from engine.events.market import MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic
from engine.runtime import RunConfig
from streams.agents import AGENT_RULES
from streams.agents import evaluate as ev
from streams.agents.config import load
from tests.agents_reference import AgentsReference
from tests.decision_inputs import PIPELINES, Run, run_pipeline
from tests.features_reference import journal_events
from tests.sliced import resumed_chains, sliced_chains, topology

SESSIONS = ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo")
CADENCES = ("book", "trade")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def config(cadence: str = "book", every: int = 1_000_000) -> RunConfig:
    stages = {"features": {"cadence": cadence}}
    return RunConfig(pipeline="test-agents", stages=stages, snapshot_every=every)


@pytest.fixture(scope="module")
def runs(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every sample session through book, mid, features and agents, per cadence."""
    return {
        (session, cadence): run_pipeline(
            samples_master,
            session,
            tmp_path_factory.mktemp(f"{session}-{cadence}"),
            config(cadence),
        )
        for session in SESSIONS
        for cadence in CADENCES
    }


def assert_matches_reference(data: Path, session: str, run: Run) -> np.ndarray:
    """Every vote, confidence and reason bit equal to the reference's; the votes."""
    votes = run.topic("votes", VOTES.dtype)
    vectors = run.topic("features", FEATURES_VECTOR.dtype)
    tops = run.topic("book", BOOK_TOP_DTYPE)
    reference = AgentsReference(
        load(run.spec, run.resolved["stages"]["agents"]), run.spec.tick_size
    )
    expected = list(reference.run(journal_events(data, session, tops), vectors))
    assert len(votes) == len(vectors) == len(expected)
    assert (votes["cause"] == vectors["cause"]).all()
    assert (votes["ts_event"] == vectors["ts_event"]).all()
    for got, ref in zip(votes, expected, strict=True):
        assert tuple(got["votes"].tolist()) == ref.votes, ref.cause
        assert tuple(got["reasons"].tolist()) == ref.reasons, ref.cause
        assert tuple(got["confidence"].tolist()) == ref.confidence, ref.cause
    return votes


@pytest.mark.parametrize("cadence", CADENCES)
@pytest.mark.parametrize("session", SESSIONS)
def test_every_vote_matches_the_reference_exactly(
    samples_master: Path, runs: dict, session: str, cadence: str
) -> None:
    """Bit-for-bit: the reference follows docs/agents.md in the same float order."""
    votes = assert_matches_reference(samples_master, session, runs[session, cadence])
    assert len(votes) > 0 or (session == "demo-wdo" and cadence == "trade")


def fired(votes: np.ndarray, agent: int) -> int:
    return int(np.bitwise_or.reduce(votes["reasons"][:, agent])) if len(votes) else 0


def test_every_rule_fires_on_the_samples_or_the_doc_says_why(runs: dict) -> None:
    seen = [0, 0, 0, 0]
    for run in runs.values():
        votes = run.topic("votes", VOTES.dtype)
        for a in range(4):
            seen[a] |= fired(votes, a)
    for a, agent in enumerate(AGENT_RULES):
        for rule in agent.rules:
            if rule.samples:
                assert not seen[a] & rule.bit, f"{agent.name}.{rule.name} fires: drop its note"
            else:
                assert seen[a] & rule.bit, f"{agent.name}.{rule.name} never fires in the samples"


def test_votes_are_sane(runs: dict) -> None:
    """Both directions from every agent wherever it has data; confidence 0..1, and 0 exactly
    when the vote is 0; no agent is stuck on one side."""
    for (session, cadence), run in runs.items():
        votes = run.topic("votes", VOTES.dtype)
        v, c, r = votes["votes"], votes["confidence"], votes["reasons"]
        assert ((c >= 0) & (c <= 1)).all()
        assert ((v == 0) == (c == 0)).all(), session
        no_data = (r & ev.NO_DATA) != 0
        assert (v[no_data] == 0).all()
        if cadence != "book" or session == "demo-wdo":
            continue
        for a, name in enumerate(AGENTS):
            ups, downs = int((v[:, a] == 1).sum()), int((v[:, a] == -1).sum())
            assert min(ups, downs) > 0, (session, name, ups, downs)
            assert max(ups, downs) < 0.97 * len(votes), (session, name, ups, downs)


def test_without_trades_only_the_book_can_speak(runs: dict) -> None:
    """B3 top of book: no trades, no order ids, one level a side."""
    votes = runs["demo-wdo", "book"].topic("votes", VOTES)
    r = votes["reasons"]
    assert ((r[:, 0] & ev.OF_NO_TRADES) != 0).all()
    assert not (r[:, 0] & (ev.OF_AGGRESSIVE_BUYING | ev.OF_PERSISTENT_SELLING)).any()
    for a, missing in ((2, ev.TR_NO_TRADES), (3, ev.FP_NO_TRADES)):
        assert (r[:, a] == ev.NO_DATA | missing).all()
        assert (votes["votes"][:, a] == 0).all()
    assert not (r[:, 1] & (ev.LQ_THIN_ASK | ev.LQ_THIN_BID | ev.NO_DATA)).any()
    # one level a side: depth over 5 levels is depth at the touch
    heavy = (r[:, 1] & ev.LQ_BID_HEAVY) != 0
    assert heavy.any()
    assert (votes["votes"][:, 0] != 0).any()  # order flow still votes, from OFI


def test_a_quiet_tape_goes_stale_then_empty(samples: Path, tmp_path: Path) -> None:
    """demo-aapl, then 40 s of clock ticks: the tape goes stale 10 s after the last trade,
    the footprint window empties 30 s after it, and the reference agrees on every vote."""
    log = EmbeddedLog(samples, FsyncPolicy(FsyncMode.NEVER))
    source = journal_topic("demo-aapl")
    log.create_topic(journal_topic("quiet"), log.config(source))
    last_ts = last_trade = 0
    with log.writer(journal_topic("quiet")) as writer:
        reader, offset = log.reader(source), 0
        while (batch := reader.read(offset, 500)) is not None:
            offset = batch.next_offset
            if isinstance(batch, FixedBatch):
                writer.append_array(batch.records)
                m = batch.view(MARKET_RECORD)
                last_ts = max(last_ts, int(m["ts_event"].max()))
                trades = m["ts_event"][np.isin(m["type_id"], (1, 5))]
                last_trade = max(last_trade, int(trades.max(initial=0)))
            else:
                kept = [
                    rec
                    for rec, value in zip(batch.records, batch.values(), strict=True)
                    if not isinstance(decode(value), SessionClosed)
                ]
                writer.append_records(kept)
        ticks = [ClockTicked(ts_event=last_ts + s * 10**9, ts_recv=0) for s in range(1, 41)]
        writer.append_records([(t.ts_event, None, None, encode(t)) for t in ticks])
    cfg = RunConfig(pipeline="test-agents", stages={"features": {"cadence": "time"}})
    run = run_pipeline(samples, "quiet", tmp_path / "run", cfg)
    votes = assert_matches_reference(samples, "quiet", run)
    quiet = votes[votes["ts_event"] > last_ts]
    assert len(quiet) == 40
    tape, foot = quiet["reasons"][:, 2], quiet["reasons"][:, 3]
    since = (quiet["ts_event"] - last_trade) / 1e9
    assert ((tape & ev.TR_STALE) != 0).tolist() == (since > 10).tolist()
    assert ((foot & ev.NO_DATA) != 0).tolist() == (since >= 30).tolist()
    assert not (tape[since > 5] & (ev.TR_RUN_BUYING | ev.TR_RUN_SELLING)).any()  # run_age_s


# -- determinism -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whole(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        (s, c): sliced_chains(
            samples_master,
            s,
            tmp_path_factory.mktemp("w"),
            config(c),
            [],
            65536,
            pipelines=PIPELINES,
        )
        for s in SESSIONS
        for c in CADENCES
    }


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cadence=st.sampled_from(CADENCES),
    cuts=st.lists(st.integers(0, 14000), max_size=6),
    batch=st.sampled_from([2, 7, 64, 1000, 65536]),
)
def test_votes_do_not_depend_on_slicing(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    whole: dict,
    session: str,
    cadence: str,
    cuts: list[int],
    batch: int,
) -> None:
    scratch = tmp_path_factory.mktemp("sliced")
    got = sliced_chains(
        samples_master, session, scratch, config(cadence), cuts, batch, pipelines=PIPELINES
    )
    assert got == whole[session, cadence]


@pytest.mark.parametrize("session", ["demo-aapl", "demo-wdo"])
def test_one_event_at_a_time_gives_identical_bytes(
    samples_master: Path, tmp_path: Path, whole: dict, session: str
) -> None:
    got = sliced_chains(
        samples_master, session, tmp_path, config("book"), [], 1, pipelines=PIPELINES
    )
    assert got == whole[session, "book"]


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cadence=st.sampled_from(CADENCES),
    every=st.sampled_from([97, 500, 2048]),
    kill_at=st.integers(1, 13000),
)
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    whole: dict,
    session: str,
    cadence: str,
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    got = resumed_chains(
        samples_master, session, scratch, config(cadence, every), kill_at, pipelines=PIPELINES
    )
    assert got == whole[session, cadence]


def test_snapshot_restore_round_trips_and_inspect_names_the_reasons(
    samples_master: Path, tmp_path: Path
) -> None:
    from engine.runtime import Runner

    log = EmbeddedLog(samples_master)
    top = topology(log, "demo-btcusdt-spot", config(), pipelines=PIPELINES)
    runner = Runner(log, journal_topic("demo-btcusdt-spot"), EmbeddedLog(tmp_path), "t", top)
    runner.begin()
    runner.advance(stop=6000, batch=300)
    runner.close()
    stage = top.stages[-1][1]
    state = stage.snapshot()
    fresh = topology(log, "demo-btcusdt-spot", config(), pipelines=PIPELINES).stages[-1][1]
    fresh.restore(state)
    assert fresh.snapshot() == state
    view = fresh.inspect()
    votes = EmbeddedLog(tmp_path).reader("run.t.votes").read(0, 10**6)
    assert isinstance(votes, FixedBatch)
    last = votes.view(VOTES.dtype)[-1]
    assert view["last_cause"] == int(last["cause"]) < 6000
    assert view["trades_seen"] > 0
    for a, name in enumerate(AGENTS):
        assert view[name]["vote"] == int(last["votes"][a])
        names = {r.name for r in AGENT_RULES[a].rules if int(last["reasons"][a]) & r.bit}
        assert set(view[name]["reasons"]) == names
    other = RunConfig(pipeline="test-agents", stages={"agents": {"footprint": {"window_s": 10.0}}})
    with pytest.raises(ValueError, match="another config"):
        topology(log, "demo-btcusdt-spot", other, pipelines=PIPELINES).stages[-1][1].restore(state)


# -- the full shared files (when present) ------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_full_shared_files(tmp_path: Path) -> None:
    """Six to nine minutes of BTC spot and WDO: the reference agrees on every vote, and every
    rule fires on the full files except the stale tape (no pause that long)."""
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
    seen = [0, 0, 0, 0]
    for session in ("spot", "wdo"):
        run = run_pipeline(data, session, tmp_path / session, config())
        votes = assert_matches_reference(data, session, run)
        assert len(votes) > 1000
        for a in range(4):
            seen[a] |= fired(votes, a)
        shutil.rmtree(tmp_path / session)
    for a, agent in enumerate(AGENT_RULES):
        for rule in agent.rules:
            if rule.bit in (ev.LQ_NO_BOOK, ev.TR_STALE) or (rule.bit == ev.NO_DATA and a == 1):
                continue  # a book cadence never sees the book missing; no pause that long
            assert seen[a] & rule.bit, f"{agent.name}.{rule.name}"
