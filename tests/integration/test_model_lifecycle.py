"""The model lifecycle on the AAPL sample: walk-forward cards (folds, purge and embargo,
schedule switches in a run), promotion as a journal event (live through the inbox too), the
retraining gate, and replays that switch at exactly the same events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.training import Cutoff, TrainOptions, Windows, train_walk_forward
from engine.app.training.gate import evaluate
from engine.events import decode
from engine.events.control import CandidateEvaluated, ModelPromoted
from engine.events.decisions import P_IN_SAMPLE, P_NO_BUNDLE, PREDICTION
from engine.events.models import ModelSwitched
from engine.log import EmbeddedLog, RecordBatch
from engine.log.journal import JournalWriter, journal_topic
from engine.models import ModelStore, WalkForwardCard, load_card
from engine.runtime import execute, verify
from streams.models.ensemble import Ensemble
from tests.models_helpers import (
    PIPELINES,
    SESSION,
    config,
    copy_journal,
    copy_samples,
    run_outputs,
    train_on,
)

ALL = TrainOptions(Cutoff("100%", fraction=1.0))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def walked(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    data = copy_samples(samples_master, tmp_path_factory.mktemp("walk") / "data")
    store = ModelStore(data / "models")
    result = train_walk_forward(EmbeddedLog(data), [SESSION], ALL, Windows(False, folds=3), store)
    return data, result


def test_every_fold_is_fitted_only_on_what_matured_before_its_window(walked: Any) -> None:
    _, result = walked
    card: WalkForwardCard = result.card
    assert len(card.folds) == 3
    embargo = card.embargo_ns
    for fold, bundle in zip(card.folds, result.bundles, strict=True):
        assert fold.train.last_maturity < fold.test.first_origin  # purged
        assert bundle.data.until_ts == fold.test.first_ts - embargo  # embargoed cut
        assert fold.in_sample_until == fold.test.first_ts
        assert fold.switch_offset == fold.test.first_origin
        assert fold.metrics["meta"].rows == fold.test.rows
    for a, b in zip(card.folds, card.folds[1:], strict=False):
        assert a.test.last_ts < b.test.first_ts  # consecutive windows
        assert b.train.rows > a.train.rows  # expanding
    assert card.pooled["meta"].rows == sum(f.test.rows for f in card.folds)


def test_rolling_folds_fit_only_the_window_before_the_test(walked: Any, tmp_path: Path) -> None:
    data, expanding = walked
    store = ModelStore(tmp_path / "models")
    rolling = train_walk_forward(EmbeddedLog(data), [SESSION], ALL, Windows(True, folds=3), store)
    first_test = expanding.card.folds[0].test
    block = first_test.first_ts - expanding.card.folds[0].train.first_ts
    for fold, grown in zip(rolling.card.folds, expanding.card.folds, strict=True):
        assert fold.test == grown.test
        assert fold.train.rows <= grown.train.rows
        assert fold.train.first_ts >= fold.test.first_ts - 2 * block


def _switches(data: Path, scratch: Path, bundle: str, store: ModelStore, batch: int) -> Any:
    out = run_outputs(data, scratch, config(bundle), store, batch=batch)
    log = EmbeddedLog(scratch)
    events = [decode(v) for b in log.reader("run.t.switches").batches() for v in b.values()]
    return out, events


def test_a_run_switches_bundles_exactly_at_the_fold_boundaries(walked: Any, tmp_path: Path) -> None:
    data, result = walked
    store = ModelStore(data / "models")
    out, switches = _switches(data, tmp_path / "a", result.schedule, store, 65536)
    folds = result.card.folds
    assert all(isinstance(e, ModelSwitched) for e in switches)
    assert [(e.cause, e.bundle, e.fold) for e in switches] == [
        (0, folds[0].bundle, -1),
        *((f.switch_offset, f.bundle, f.index) for f in folds),
    ]
    predictions, vectors = out["predictions"], out["features"]
    for fold, after in zip(folds, [*folds[1:], None], strict=True):
        stop = after.switch_offset if after else 2**62
        mine = (predictions["cause"] >= fold.switch_offset) & (predictions["cause"] < stop)
        ensemble = Ensemble(load_card(store, fold.bundle), store.get)
        expected = ensemble.predict(vectors["values"][mine])["meta"]
        assert np.array_equal(predictions["meta"][mine], expected)
        assert not (predictions["flags"][mine] & P_IN_SAMPLE).any()  # all out of sample
    early = predictions["cause"] < folds[0].switch_offset
    in_sample = predictions["ts_event"][early] < folds[0].in_sample_until
    assert np.array_equal((predictions["flags"][early] & P_IN_SAMPLE) != 0, in_sample)
    assert in_sample.any()
    one_by_one, again = _switches(data, tmp_path / "b", result.schedule, store, 1)
    assert again == switches
    assert one_by_one["predictions"].tobytes() == predictions.tobytes()


def test_walk_forward_across_sessions_trains_on_the_earlier_and_tests_on_the_later(
    samples_master: Path, tmp_path: Path
) -> None:
    """The AAPL sample again as the next day's session: fold 0 learns day one, tests day two."""
    data = copy_samples(samples_master, tmp_path / "data")
    s = Path(__file__).parents[2] / "replays" / "samples"
    ingest = ["ingest", "lobster", str(s / "lobster_AAPL_2012-06-21_message_10.csv.gz"),
              str(s / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz"), "--symbol", "AAPL",
              "--date", "2012-06-22", "--session", "aapl-next", "--quiet"]  # fmt: skip
    assert CliRunner().invoke(app, ["--data", str(data), *ingest]).exit_code == 0
    store = ModelStore(data / "models")
    both = [SESSION, "aapl-next"]
    result = train_walk_forward(EmbeddedLog(data), both, ALL, Windows(False, folds=1), store)
    (fold,) = result.card.folds
    assert fold.train.first_session == fold.train.last_session == SESSION
    assert fold.test.first_session == fold.test.last_session == "aapl-next"
    assert fold.switch_session == "aapl-next"
    assert [s.session for s in result.card.sessions] == both
    overlap = CliRunner().invoke(
        app, ["--data", str(data), "train", SESSION, SESSION, "--walk-forward", "--quiet"]
    )
    assert overlap.exit_code == 1
    assert "overlap in time" in flat(overlap.output)


# -- promotion ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return train_on(copy_samples(samples_master, tmp_path_factory.mktemp("promote") / "data"))


def test_a_promotion_in_the_journal_switches_the_model_at_that_event(
    bundle: Any, tmp_path: Path
) -> None:
    data = copy_samples(bundle.data, tmp_path / "data")
    at = 600
    promotion = ModelPromoted(1, 1, bundle.result.bundle, "", "operator", "test")
    copy_journal(data, "live-aapl", {at: [promotion]})
    log = EmbeddedLog(data)
    run = execute(log, "live-aapl", config(""), run_id="p1", pipelines=PIPELINES,
                  models=bundle.store).manifest  # fmt: skip
    switches = [decode(v) for b in log.reader("run.p1.switches").batches() for v in b.values()]
    assert [(e.cause, e.bundle, e.source) for e in switches] == [
        (0, "", "config"),
        (at, bundle.result.bundle, "promotion"),
    ]
    assert PREDICTION.dtype is not None
    predictions = np.concatenate(
        [b.view(PREDICTION.dtype) for b in log.reader("run.p1.predictions").batches()]
    )
    before = predictions["cause"] < at
    assert (predictions["flags"][before] & P_NO_BUNDLE).all()
    assert not (predictions["flags"][~before] & P_NO_BUNDLE).any()
    assert run.status == "complete"
    assert verify(log, "p1", pipelines=PIPELINES, models=bundle.store).identical
    assert verify(log, "p1", pipelines=PIPELINES, models=bundle.store, batch=7).identical


def _journaled(log: EmbeddedLog, session: str) -> list[tuple[int, bytes | None, Any]]:
    out = []
    for batch in log.reader(journal_topic(session)).batches():
        if isinstance(batch, RecordBatch):
            for i, (_, key, _, value) in enumerate(batch.records):
                out.append((batch.base_offset + i, key, decode(value)))
    return out


def test_tape_models_promote_appends_or_hands_to_the_live_writer(
    bundle: Any, tmp_path: Path
) -> None:
    data = copy_samples(bundle.data, tmp_path / "data")
    copy_journal(data, "open-aapl", close=False)
    log = EmbeddedLog(data)
    runner, ref = CliRunner(), bundle.result.bundle[:10]
    base = ["--data", str(data), "models", "promote", ref]
    now = runner.invoke(app, [*base, "--session", "open-aapl", "--operator", "ana"])
    assert now.exit_code == 0, now.output
    end = log.watermarks(journal_topic("open-aapl"))[1]
    assert f"into open-aapl.journal at offset {end - 1:,}" in flat(now.output)
    offset, key, event = _journaled(log, "open-aapl")[-1]
    assert (offset, key) == (end - 1, None)
    assert isinstance(event, ModelPromoted)
    assert (event.bundle, event.reason, event.operator) == (bundle.result.bundle, "operator", "ana")

    live = JournalWriter(log, "open-aapl")  # a feed writing the session holds its journal
    queued = runner.invoke(app, [*base, "--session", "open-aapl"])
    assert queued.exit_code == 0, queued.output
    assert "into the inbox of open-aapl" in flat(queued.output)
    assert log.watermarks(journal_topic("open-aapl"))[1] == end  # not journaled yet
    assert live.take_inbox() == 1
    assert live.take_inbox() == 0
    live.close()
    again = JournalWriter(log, "open-aapl")  # a restarted feed takes nothing twice
    assert again.take_inbox() == 0
    again.close()
    offset, key, event = _journaled(log, "open-aapl")[-1]
    assert (offset, key) == (end, b"inbox:0")
    assert isinstance(event, ModelPromoted)

    closed = runner.invoke(app, [*base, "--session", SESSION])
    assert closed.exit_code == 1
    assert "session demo-aapl is closed" in flat(closed.output)


# -- the retraining gate ------------------------------------------------------------------------


def test_the_gate_promotes_only_a_candidate_that_beats_the_current_and_the_baseline(
    bundle: Any, tmp_path: Path
) -> None:
    data = copy_samples(bundle.data, tmp_path / "data")
    log, store = EmbeddedLog(data), ModelStore(data / "models")
    options = TrainOptions(Cutoff("100%", fraction=1.0), holdout=0.25)
    first = evaluate(log, [SESSION], None, options, store)
    e = first.evaluated
    card = first.candidate.card
    assert e.candidate == first.candidate.bundle
    assert e.candidate_log_loss == card.metrics["meta"].log_loss
    assert e.baseline_log_loss == card.metrics["meta"].baseline_log_loss
    assert (e.fold_first, e.fold_last, e.rows) == (
        card.data.holdout.first_origin, card.data.holdout.last_origin, card.data.holdout.rows
    )  # fmt: skip
    assert e.promoted == (e.candidate_log_loss < e.baseline_log_loss)
    assert (first.promoted is not None) == e.promoted
    same = evaluate(log, [SESSION], first.candidate.bundle, options, store).evaluated
    assert same.current_log_loss == same.candidate_log_loss  # the same bundle on the same fold
    assert not same.promoted  # not better than itself: kept, and said so
    assert same.detail.startswith("kept the current bundle")

    copy_journal(data, "open-aapl", close=False)
    args = ["--data", str(data), "models", "retrain", SESSION, "--into", "open-aapl",
            "--fold", "0.25", "--current", first.candidate.bundle[:12]]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    journaled = [ev for _, _, ev in _journaled(log, "open-aapl")][-1]
    assert isinstance(journaled, CandidateEvaluated)
    assert not journaled.promoted
    assert journaled.current == first.candidate.bundle


# -- the command line ---------------------------------------------------------------------------


def test_tape_train_walk_forward_and_tape_models_list_show_diff(walked: Any) -> None:
    data, result = walked
    runner, base = CliRunner(), ["--data", str(data)]
    trained = runner.invoke(app, [*base, "train", SESSION, "--walk-forward", "--train", "20s",
                                  "--test", "10s", "--rolling", "--quiet"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    text = flat(trained.output)
    assert "walk-forward, rolling: every fold scored on a window it never saw" in text
    card = next(w for w in text.split() if len(w) == 64)
    listed = flat(runner.invoke(app, [*base, "models", "list"]).output)
    assert card[:12] in listed
    assert result.schedule[:12] in listed
    assert "walk-forward (3 folds, merged)" in listed
    shown = flat(runner.invoke(app, [*base, "models", "show", result.schedule[:10]]).output)
    for fold in result.card.folds:
        assert f"{fold.bundle[:12]}" in shown
    m = result.card.pooled["meta"]
    pooled = shown[shown.index("pooled over every fold") :].replace("│", " ").split()
    assert pooled[4:7] == [f"{m.rows:,}", f"{m.accuracy:.4f}", f"{m.log_loss:.4f}"]
    a, b = result.card.folds[0].bundle, result.card.folds[1].bundle
    diffed = flat(runner.invoke(app, [*base, "models", "diff", a[:10], b[:10]]).output)
    cells = diffed.replace("│", " ").split()
    at = cells.index("data.until")
    assert cells[at + 1 : at + 7] == ["walk-forward", "fold", "0", "walk-forward", "fold", "1"]
    assert "models.meta.hash" in cells
    same = runner.invoke(app, [*base, "models", "diff", a[:10], a[:12]])
    assert "are the same card" in flat(same.output)
    both = runner.invoke(app, [*base, "train", SESSION, "--walk-forward", "--folds", "2",
                               "--train", "20s", "--test", "10s"])  # fmt: skip
    assert both.exit_code == 2
    assert "give --folds N, or --train W --test T, not both" in flat(both.output)


def test_retraining_every_n_labels_follows_a_live_session(bundle: Any, tmp_path: Path) -> None:
    """A feed appends the session in two parts; the retrainer decides once per 300 labels."""
    from engine.app.training.retrain import Retrainer

    data = copy_samples(bundle.data, tmp_path / "data")
    log = EmbeddedLog(data)
    copy_journal(data, "growing", close=False)  # the whole session but its close, so far
    store = ModelStore(data / "models")
    options = TrainOptions(Cutoff("100%", fraction=1.0), holdout=0.25)
    retrainer = Retrainer(log, ["growing"], options, store, None)
    try:
        first = retrainer.poll(300)
        assert first is not None  # 900-odd labels so far: due
        assert retrainer.poll(300) is None  # nothing new since
        assert not retrainer.closed
        writer = JournalWriter(log, "growing")
        writer.event(_closed("growing"))  # the feed closes the session
        writer.close()
        assert retrainer.poll(300) is None  # a few more labels matured, not 300
        assert retrainer.closed
        counted = retrainer.labels_so_far()
    finally:
        retrainer.close()
    assert counted == 935  # every label of the sample, as the labels pipeline gives
    assert first.evaluated.promoted == (first.promoted is not None)
    if first.promoted is not None:
        assert retrainer.current == first.candidate.bundle


def _closed(session: str) -> Any:
    from engine.events.control import SessionClosed

    return SessionClosed(2**62, 2**62, session, "end of input")


def test_a_schedule_resumed_from_a_snapshot_switches_as_if_uninterrupted(
    walked: Any, tmp_path: Path
) -> None:
    from engine.runtime import Runner
    from engine.runtime.runner import latest_snapshot
    from tests.models_helpers import topology

    data, result = walked
    store, log = ModelStore(data / "models"), EmbeddedLog(data)

    def runner(sink: Path, every: int = 0) -> Runner:
        made = topology(log, config(result.schedule), store)
        return Runner(log, journal_topic(SESSION), EmbeddedLog(sink), "t", made, sink / "s", every)

    whole = runner(tmp_path / "whole")
    whole.begin()
    whole.advance()
    whole.close()
    first = runner(tmp_path / "cut", every=250)
    first.begin()
    first.advance(stop=result.card.folds[1].switch_offset + 10, batch=64)  # past two switches
    first.close()
    snapshot = latest_snapshot(tmp_path / "cut" / "s")
    assert snapshot is not None
    second = runner(tmp_path / "cut", every=250)
    second.resume_from(snapshot)
    second.advance(batch=500)
    second.close()
    assert [(s.port, s.count, s.chain) for s in second.summaries()] == [
        (s.port, s.count, s.chain) for s in whole.summaries()
    ]
