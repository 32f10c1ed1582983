"""The ``consensus`` processor on the real samples, fed real agent votes and predictions and
labels computed from real mids (tests/decision_inputs.py): the documented formulas, adaptation
to an oracle, slicing/restart independence, and the full shared files."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events.decisions import DECISION, LABEL, PREDICTION, VOTES, new_records
from engine.events.features import F_WARMING_UP, FEATURES_VECTOR
from engine.log import EmbeddedLog, FixedBatch
from engine.log.journal import journal_topic
from engine.runtime import RunConfig, Runner, Slice, StageContext
from streams.agents import evaluate as ev
from streams.consensus import CONSENSUS_STAGE, ConsensusStage
from tests.consensus_reference import replay
from tests.decision_inputs import PIPELINES, Run, run_pipeline
from tests.sliced import resumed_chains, sliced_chains, topology

SESSIONS = ("demo-aapl", "demo-btcusdt-spot", "demo-btcusdt-usdm", "demo-wdo")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def config(every: int = 1_000_000, **consensus: object) -> RunConfig:
    stages = {"consensus": dict(consensus)} if consensus else {}
    return RunConfig(pipeline="test-consensus", stages=stages, snapshot_every=every)


@pytest.fixture(scope="module")
def runs(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return {
        s: run_pipeline(samples_master, s, tmp_path_factory.mktemp(s), config()) for s in SESSIONS
    }


def assert_matches_reference(run: Run) -> np.ndarray:
    """Every decision equal to the reference's, from the run's own topics; the decisions."""
    vectors = run.topic("features", FEATURES_VECTOR.dtype)
    decisions = run.topic("decisions", DECISION.dtype)
    expected = replay(
        run.resolved["stages"]["consensus"],
        vectors,
        run.topic("predictions", PREDICTION.dtype),
        run.topic("votes", VOTES.dtype),
        run.topic("labels", LABEL.dtype),
    )
    assert len(decisions) == len(vectors) == len(expected)
    assert (decisions["cause"] == vectors["cause"]).all()
    assert (decisions["ts_event"] == vectors["ts_event"]).all()
    for got, ref in zip(decisions, expected, strict=True):
        assert (int(got["direction"]), int(got["flags"])) == (ref.direction, ref.flags), ref.cause
        assert float(got["score"]) == ref.score, ref.cause
        assert float(got["confidence"]) == ref.confidence
        assert got["weights"].tolist() == ref.weights, ref.cause
        assert got["votes"].tolist() == ref.votes
        assert np.array_equal(got["confidences"], ref.confidences, equal_nan=True)
        for name in ("model_score", "agent_score"):
            value = float(got[name])
            assert value == getattr(ref, name) or (
                math.isnan(value) and math.isnan(getattr(ref, name))
            )
    return decisions


@pytest.mark.parametrize("session", SESSIONS)
def test_every_decision_follows_the_documented_formulas(runs: dict[str, Run], session: str) -> None:
    decisions = assert_matches_reference(runs[session])
    assert len(decisions) > 200
    warming = runs[session].topic("features", FEATURES_VECTOR.dtype)["flags"] & F_WARMING_UP
    assert ((decisions["flags"] & 1) == warming).all()
    assert (decisions["direction"][warming != 0] == 0).all()
    assert (decisions["confidence"][decisions["direction"] == 0] == 0).all()


def test_the_agents_votes_are_carried_and_absent_agents_weigh_nothing(runs: dict[str, Run]) -> None:
    for session in SESSIONS:
        run = runs[session]
        decisions, votes = run.topic("decisions", DECISION.dtype), run.topic("votes", VOTES.dtype)
        present = (votes["reasons"] & ev.NO_DATA) == 0
        assert (decisions["votes"][:, 2:][present] == votes["votes"][present]).all()
        assert (decisions["weights"][:, 2:][~present] == 0).all()
        total = decisions["weights"].sum(axis=1)
        assert np.allclose(total[total > 0], 1.0, rtol=0, atol=1e-12)
    wdo = runs["demo-wdo"].topic("decisions", DECISION.dtype)
    assert (wdo["weights"][:, 4:] == 0).all()  # no trades: tape reading and footprint absent
    assert (wdo["weights"][:, 2] > 0).any()


def oracle(run: Run) -> tuple[np.ndarray, ...]:
    """The run's vectors (warm-up cleared), real votes and labels, and predictions in which
    meta knows each vector's label and online always says the opposite."""
    vectors = run.topic("features", FEATURES_VECTOR.dtype).copy()
    vectors["flags"] &= np.uint16(0xFFFF ^ F_WARMING_UP)
    labels = run.topic("labels", LABEL.dtype)
    truth = {int(lab["origin"]): int(lab["label"]) for lab in labels}
    preds = new_records(PREDICTION, len(vectors))
    preds["cause"] = vectors["cause"]
    for i, cause in enumerate(vectors["cause"].tolist()):
        y = truth.get(cause, 0)
        triple = ((0.8, 0.1, 0.1), (0.1, 0.8, 0.1), (0.1, 0.1, 0.8))[y + 1]
        preds[i]["meta"], preds[i]["online"] = triple, triple[::-1]
    return vectors, preds, run.topic("votes", VOTES.dtype), labels


@pytest.mark.parametrize("session", ["demo-aapl", "demo-btcusdt-usdm"])
def test_an_oracle_gains_weight_on_real_labels(runs: dict[str, Run], session: str) -> None:
    vectors, preds, votes, labels = oracle(runs[session])
    end = int(max(vectors["cause"].max(), labels["cause"].max())) + 1
    spec = runs[session].spec
    stage = ConsensusStage(StageContext("s", spec, CONSENSUS_STAGE.defaults(spec), 0))
    inputs = {"features": vectors, "predictions": preds, "votes": votes, "labels": labels}
    decisions = stage.process(Slice(0, end, inputs=inputs))[0]
    assert isinstance(decisions, np.ndarray)
    info = stage.inspect()
    acc = info["accuracy"]
    assert acc["meta"] > 0.6 > 0.4 > acc["online"]
    assert info["scored_calls"]["meta"] == info["scored_calls"]["online"] > 50
    last = decisions["weights"][-1]
    assert last[0] > 0.45 > 0.15 > last[1]
    assert last[0] + last[1] == pytest.approx(0.6, abs=1e-12)
    # the agents are re-weighted by their own realised accuracy, within their 40 %
    assert last[2:].sum() == pytest.approx(0.4, abs=1e-12)
    base = 0.4 * np.array([0.30, 0.20, 0.25, 0.25])
    assert not np.allclose(last[2:], base, rtol=0, atol=1e-3)
    assert (decisions["direction"] != 0).any()
    matched = replay(dataclasses.asdict(stage.config), vectors, preds, votes, labels)
    assert [d.weights for d in matched] == decisions["weights"].tolist()


# -- determinism -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whole(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        s: sliced_chains(
            samples_master,
            s,
            tmp_path_factory.mktemp("w"),
            config(),
            [],
            65536,
            pipelines=PIPELINES,
        )
        for s in SESSIONS
    }


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    cuts=st.lists(st.integers(0, 14000), max_size=6),
    batch=st.sampled_from([3, 64, 1000, 65536]),
)
def test_decisions_do_not_depend_on_slicing(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    whole: dict,
    session: str,
    cuts: list[int],
    batch: int,
) -> None:
    got = sliced_chains(
        samples_master,
        session,
        tmp_path_factory.mktemp("s"),
        config(),
        cuts,
        batch,
        pipelines=PIPELINES,
    )
    assert got == whole[session]


def test_one_event_at_a_time_gives_identical_bytes(
    samples_master: Path, tmp_path: Path, whole: dict
) -> None:
    assert (
        sliced_chains(samples_master, "demo-wdo", tmp_path, config(), [], 1, pipelines=PIPELINES)
        == whole["demo-wdo"]
    )


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session=st.sampled_from(SESSIONS),
    every=st.sampled_from([97, 500, 2048]),
    kill_at=st.integers(1, 13000),
)
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    samples_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
    whole: dict,
    session: str,
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    assert (
        resumed_chains(
            samples_master, session, scratch, config(every), kill_at, pipelines=PIPELINES
        )
        == whole[session]
    )


def test_snapshot_restore_round_trips_and_inspect_shows_the_weights(
    samples_master: Path, tmp_path: Path
) -> None:
    log = EmbeddedLog(samples_master)
    top = topology(log, "demo-wdo", config(), pipelines=PIPELINES)
    runner = Runner(log, journal_topic("demo-wdo"), EmbeddedLog(tmp_path), "t", top)
    runner.begin()
    runner.advance(stop=1500, batch=200)
    runner.close()
    stage = top.stages[-1][1]
    state = stage.snapshot()
    fresh = topology(log, "demo-wdo", config(), pipelines=PIPELINES).stages[-1][1]
    fresh.restore(state)
    assert fresh.snapshot() == state
    view = fresh.inspect()
    assert view["labels_scored"] > 0
    assert view["pending"] > 0
    batch = EmbeddedLog(tmp_path).reader("run.t.decisions").read(0, 10**6)
    assert isinstance(batch, FixedBatch)
    last = batch.view(DECISION.dtype)[-1]
    assert view["last_cause"] == int(last["cause"])
    assert list(view["last_weights"].values()) == last["weights"].tolist()
    with pytest.raises(ValueError, match="not this one"):
        topology(log, "demo-wdo", config(dead_band=0.3), pipelines=PIPELINES).stages[-1][1].restore(
            state
        )


# -- the full shared files (when present) ------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_full_shared_files(tmp_path: Path) -> None:
    """Past the warm-up there are buys and sells, and the confidence is informative: mostly
    well below risk's 0.60, reaching it only now and then."""
    from typer.testing import CliRunner

    from engine.app.cli import app

    data = tmp_path / "data"
    source = str(SHARED / "crypto" / "binance_usdm_btcusdt_20240808.gz")
    result = CliRunner().invoke(
        app,
        ["--data", str(data), "--fsync", "never", "ingest", "binance", source, "--session", "usdm",
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = run_pipeline(data, "usdm", tmp_path / "run", config())
    decisions = assert_matches_reference(run)
    warm = decisions[(decisions["flags"] & 1) == 0]
    assert len(warm) > 3000
    assert (warm["direction"] == 1).sum() > 300
    assert (warm["direction"] == -1).sum() > 300
    strong = (warm["confidence"] >= 0.6).mean()
    assert 0 < strong < 0.05
    assert np.median(warm["confidence"][warm["direction"] != 0]) < 0.4
    shutil.rmtree(tmp_path / "run")
