"""Runs on the real samples do not depend on slicing, restarts or live vs replay."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog, FixedBatch, FsyncMode, FsyncPolicy
from engine.log.journal import journal_topic
from engine.log.topic import TopicCodec
from engine.runtime import Pipeline, RunConfig, Runner, Topology, execute
from engine.runtime.manifest import OutputSummary
from engine.runtime.runner import latest_snapshot
from engine.runtime.runs import session_opened
from engine.runtime.topology import resolve

SESSIONS = ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo")
UNFED = ("orders", "executions")


def _topology(log: EmbeddedLog, session: str, config: RunConfig | None = None) -> Topology:
    opened = session_opened(log, session)
    resolved = resolve(SHIPPED, config or RunConfig(), opened.instrument)
    return Topology(SHIPPED.get(resolved["pipeline"]), resolved, session, opened.instrument)


def _sliced(data: Path, session: str, scratch: Path, cuts: list[int], batch: int) -> list:
    log = EmbeddedLog(data)
    runner = Runner(log, journal_topic(session), EmbeddedLog(scratch), "t", _topology(log, session))
    runner.begin()
    for cut in sorted(cuts):
        runner.advance(stop=max(cut, runner.offset), batch=batch)
    runner.advance(batch=batch)
    runner.close()
    return runner.summaries()


def _key(summaries: list[OutputSummary]) -> list[tuple[str, int, str]]:
    return [(s.port, s.count, s.chain) for s in summaries]


@pytest.fixture(scope="module")
def reference(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each session's outputs computed in one go with the default slicing."""
    out = {}
    for session in SESSIONS:
        scratch = tmp_path_factory.mktemp("ref")
        out[session] = _key(_sliced(samples_master, session, scratch, [], 65536))
        # the short samples never leave the features' warm-up, so they place no orders
        fed = {port: count for port, count, _ in out[session] if port not in UNFED}
        assert all(fed.values()), (session, fed)
    return out


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cuts=st.lists(st.integers(0, 14000), max_size=8),
    batch=st.sampled_from([1, 2, 7, 64, 1000, 65536]),
)
def test_outputs_do_not_depend_on_slicing(
    samples_master: Path, tmp_path_factory: pytest.TempPathFactory, reference: dict,
    session: str, cuts: list[int], batch: int,
) -> None:  # fmt: skip
    if batch == 1 and session == "demo-btcusdt-spot":
        batch = 3  # one-at-a-time on the largest sample is covered by the live test below
    scratch = tmp_path_factory.mktemp("sliced")
    assert _key(_sliced(samples_master, session, scratch, cuts, batch)) == reference[session]


def test_one_event_at_a_time_equals_batch_floats_included(
    samples_master: Path, tmp_path: Path, reference: dict
) -> None:
    """The float outputs (book.mid) are identical bit for bit when every slice is one event."""
    for session in ("demo-aapl", "demo-wdo"):
        got = _sliced(samples_master, session, tmp_path / session, [], 1)
        assert _key(got) == reference[session]
    mids = EmbeddedLog(tmp_path / "demo-aapl").reader("run.t.mid").read(0, 10**6)
    assert isinstance(mids, FixedBatch)
    values = mids.view(SHIPPED.get("default").producer_of("mid")[1].event_type.dtype)
    assert np.isfinite(values["ewm_variance"]).all()
    assert values["ewm_variance"].max() > 0


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    every=st.sampled_from([97, 500, 2048]),
    kill_at=st.integers(1, 13000),
)
def test_resume_after_a_kill_matches_an_uninterrupted_run(
    samples_master: Path, tmp_path_factory: pytest.TempPathFactory, reference: dict,
    session: str, every: int, kill_at: int,
) -> None:  # fmt: skip
    """Stop anywhere after writing outputs past a snapshot, resume in a fresh runner."""
    data = samples_master
    scratch = tmp_path_factory.mktemp("resume")
    snaps = scratch / "snapshots"
    config = RunConfig(snapshot_every=every)
    log, sink = EmbeddedLog(data), EmbeddedLog(scratch)
    first = Runner(
        log, journal_topic(session), sink, "t", _topology(log, session, config), snaps, every
    )
    first.begin()
    first.advance(stop=min(kill_at, first.reader.end_offset), batch=333)
    first.close()  # the "kill": outputs beyond the last snapshot stay on disk
    second = Runner(
        log, journal_topic(session), sink, "t", _topology(log, session, config), snaps, every
    )
    snapshot = latest_snapshot(snaps)
    if snapshot is None:
        second.begin()
    else:
        assert snapshot.journal_offset % every == 0
        second.resume_from(snapshot)
    second.advance(batch=4096)
    second.close()
    assert _key(second.summaries()) == reference[session]


def test_live_follow_of_a_growing_journal_equals_replay(samples: Path, reference: dict) -> None:
    """A feed appends the journal record by record while the runner follows it live."""
    log = EmbeddedLog(samples, FsyncPolicy(FsyncMode.NEVER))
    source = log.reader(journal_topic("demo-wdo"))
    log.create_topic(journal_topic("live"), log.config(journal_topic("demo-wdo")))
    assert log.config(journal_topic("live")).codec is TopicCodec.MIXED

    def feed() -> None:
        with log.writer(journal_topic("live")) as writer:
            offset = 0
            while (batch := source.read(offset, 50)) is not None:
                if isinstance(batch, FixedBatch):
                    writer.append_array(batch.records)
                else:
                    writer.append_records(batch.records)
                offset = batch.next_offset

    thread = threading.Thread(target=feed)
    thread.start()
    try:
        outcome = execute(log, "live", follow=True, run_id="live-1", pipelines=SHIPPED)
    finally:
        thread.join()
    assert outcome.manifest.journal_stop == source.end_offset
    assert _key(outcome.manifest.outputs) == reference["demo-wdo"]


def test_transient_ports_feed_later_stages_but_are_never_written(
    samples: Path, reference: dict
) -> None:
    """A transient ``book`` still drives ``mid``, which hashes exactly as in the default run."""
    base = SHIPPED.get("mid")
    pipelines = SHIPPED.extended(Pipeline("test-transient-book", base.stages, transient=("book",)))
    log = EmbeddedLog(samples)
    outcome = execute(
        log,
        "demo-aapl",
        RunConfig(pipeline="test-transient-book"),
        run_id="tb",
        pipelines=pipelines,
    )
    assert [o.port for o in outcome.manifest.outputs] == ["mid"]
    assert "run.tb.book" not in log.topics()
    mid = next(k for k in reference["demo-aapl"] if k[0] == "mid")  # the same in every pipeline
    assert _key(outcome.manifest.outputs) == [mid]
    with pytest.raises(ValueError, match="transient ports \\['nope'\\]"):
        Pipeline("test-bad", base.stages, transient=("nope",))
