"""The compiled CatBoost evaluator against CatBoost, and the models stage with a trained bundle
on the AAPL sample: bit-identity per event and per batch, resume, manifest, replay --verify."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.training.data import load_rows
from engine.app.training.fit import Params, fit
from engine.app.training.layers import LAYERS, group_columns
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelStore, load_card
from engine.runtime import Runner, execute, read_manifest
from engine.runtime.runner import latest_snapshot
from streams.features import INDEX, NAMES
from streams.models.ensemble import Ensemble
from streams.models.trees import compile_model, model_inputs, raw_values
from tests.models_helpers import (
    PIPELINES,
    SESSION,
    Trained,
    config,
    copy_samples,
    run_outputs,
    topology,
    train_on,
)


@pytest.fixture(scope="module")
def trained(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A stacked (``two``) bundle: the path with base models and a meta-learner."""
    data = copy_samples(samples_master, tmp_path_factory.mktemp("trained") / "data")
    return train_on(data, layers="two")


@pytest.fixture(scope="module")
def rows(trained: Trained) -> tuple[np.ndarray, np.ndarray]:
    """The AAPL sample's labelled feature vectors (values, labels)."""
    log = EmbeddedLog(trained.data)
    frame = load_rows(log, read_manifest(trained.data, trained.result.run_id))
    frame = frame.filter(~frame["undefined"])
    return frame.select(NAMES).to_numpy(), frame["label"].to_numpy()


# -- the evaluator -----------------------------------------------------------------------------


@pytest.mark.parametrize("groups", list(LAYERS["two"].values()))
def test_evaluator_equals_catboost_raw_values_exactly(
    rows: tuple[np.ndarray, np.ndarray], groups: tuple[str, ...]
) -> None:
    """On every real vector (half of them never seen in training, many with NaN features),
    the compiled trees give CatBoost's RawFormulaVal to the last bit."""
    values, labels = rows
    x = model_inputs(values, [INDEX[c] for c in group_columns(groups)])
    fitted = fit(x[: len(x) // 2], labels[: len(x) // 2], Params(80, 5, 0.1), 7, 1)
    expected = fitted.model.predict(x, prediction_type="RawFormulaVal")
    got = raw_values(fitted.trees, x)
    assert got.shape == (len(x), 3)
    assert np.array_equal(got, expected)
    assert np.isnan(values).any()  # the MISSING path is exercised


def test_catboost_reading_the_stored_artifact_is_within_one_ulp(
    trained: Trained, rows: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """CatBoost's own JSON loader rounds leaf values by up to an ulp (the in-memory model and
    our evaluator agree exactly, above); the artifact itself is exact."""
    from catboost import CatBoostClassifier

    card = load_card(trained.store, trained.result.bundle)
    values, _ = rows
    for role in ("context", "micro"):
        member = card.models[role]
        raw = trained.store.get(member.hash)
        (tmp_path / "m.json").write_bytes(raw)
        reloaded = CatBoostClassifier()
        reloaded.load_model(str(tmp_path / "m.json"), format="json")
        x = model_inputs(values, [INDEX[c] for c in member.columns])
        ours = raw_values(compile_model(raw), x)
        theirs = reloaded.predict(x, prediction_type="RawFormulaVal")
        assert np.max(np.abs(ours - theirs)) <= 4 * np.spacing(np.max(np.abs(ours)))


@pytest.mark.parametrize("mode", ["Min", "Max"])
def test_nan_goes_where_the_models_nan_mode_sends_it(mode: str) -> None:
    """Models trained on NaN (not ours: ours never see NaN) follow nan_value_treatment."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int) - 1
    x[rng.random(x.shape) < 0.2] = np.nan
    params = Params(30, 3, 0.1).catboost(0, 1) | {"nan_mode": mode}
    from catboost import CatBoostClassifier

    from engine.app.training.fit import artifact

    model = CatBoostClassifier(**params)
    model.fit(x, y + 1)
    trees = compile_model(artifact(model))
    assert np.array_equal(raw_values(trees, x), model.predict(x, prediction_type="RawFormulaVal"))


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, 900), max_size=8))
def test_evaluator_rows_are_identical_one_at_a_time_or_in_batches(
    trained: Trained, rows: tuple[np.ndarray, np.ndarray], cuts: list[int]
) -> None:
    card = load_card(trained.store, trained.result.bundle)
    member = card.models["micro"]
    trees = compile_model(trained.store.get(member.hash))
    x = model_inputs(rows[0], [INDEX[c] for c in member.columns])
    whole = raw_values(trees, x)
    bounds = sorted({0, len(x), *(c for c in cuts if c < len(x))})
    parts = [raw_values(trees, x[a:b]) for a, b in itertools.pairwise(bounds)]
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    singles = [raw_values(trees, x[i : i + 1]) for i in range(0, len(x), 37)]
    assert np.concatenate(singles).tobytes() == whole[::37].tobytes()


def test_the_ensemble_reads_its_inputs_in_place_with_the_same_floats(
    trained: Trained, rows: tuple[np.ndarray, np.ndarray]
) -> None:
    """``Ensemble.predict`` (trees reading the feature rows and the base probabilities in
    place) gives every role's probabilities bit for bit as the input matrices of training do
    (``model_inputs``, ``meta_inputs``; the evaluator on them is CatBoost's RawFormulaVal, see
    above): for all real rows at once, from a strided view like the stage's, and row by row."""
    card = load_card(trained.store, trained.result.bundle)
    ensemble = Ensemble(card, trained.store.get)
    values = rows[0]
    assert np.isnan(values).any()
    strided = np.zeros(len(values), [("pad", "u2"), ("values", "f8", (len(NAMES),))])
    strided["values"] = values
    expected = ensemble.predict_unfused(values)
    assert set(expected) == {*card.bases(), "meta"}
    for got in (ensemble.predict(values), ensemble.predict(strided["values"])):
        assert {r: p.tobytes() for r, p in got.items()} == {
            r: p.tobytes() for r, p in expected.items()
        }
    for i in range(0, len(values), 41):
        one = ensemble.predict(strided["values"][i : i + 1])
        assert all(one[r].tobytes() == expected[r][i : i + 1].tobytes() for r in expected)


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


# -- the models stage with a bundle ------------------------------------------------------------


@pytest.fixture(scope="module")
def whole_run(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_outputs(
        trained.data, tmp_path_factory.mktemp("whole"), config(trained.result.bundle), trained.store
    )


def test_predictions_reproduce_the_cards_holdout_metrics(
    trained: Trained, whole_run: dict[str, Any]
) -> None:
    """The stage evaluates exactly what training scored: the meta probabilities it emits for
    the holdout vectors give the card's accuracy and log loss to the last bit."""
    card = trained.result.card
    predictions, labels = whole_run["predictions"], whole_run["labels"]
    defined = labels[(labels["flags"] & 1) == 0]
    hold = defined[
        (defined["origin"] >= card.data.holdout.first_origin)
        & (defined["origin"] <= card.data.holdout.last_origin)
    ]
    assert len(hold) == card.data.holdout.rows
    by_cause = {int(c): i for i, c in enumerate(predictions["cause"])}
    for role in ("context", "micro", "meta"):
        probs = np.stack([predictions[role][by_cause[int(o)]] for o in hold["origin"]])
        truth = hold["label"].astype(np.int64) + 1
        metrics = card.metrics[role]
        assert np.mean(np.argmax(probs, axis=1) == truth) == metrics.accuracy
        p_true = np.clip(probs[np.arange(len(truth)), truth], 1e-15, 1.0)
        assert float(-np.mean(np.log(p_true))) == metrics.log_loss
    assert np.array_equal(predictions["probs"], predictions["meta"])
    assert (predictions["flags"] & 0x01 == 0).all()  # a bundle: never P_NO_BUNDLE


def test_a_merged_bundle_is_one_model_whose_predictions_reproduce_its_card(
    trained: Trained, tmp_path: Path
) -> None:
    """The default design: ``meta`` alone, over all 65 features; the stage's predictions for
    the holdout give the card's log loss exactly, and the stacked roles' fields are NaN."""
    merged = train_on(trained.data)
    card = merged.result.card
    assert list(card.models) == ["meta"]
    assert len(card.models["meta"].columns) == 65
    out = run_outputs(trained.data, tmp_path, config(merged.result.bundle), merged.store)
    predictions, labels = out["predictions"], out["labels"]
    defined = labels[(labels["flags"] & 1) == 0]
    span = (card.data.holdout.first_origin, card.data.holdout.last_origin)
    hold = defined[(defined["origin"] >= span[0]) & (defined["origin"] <= span[1])]
    assert len(hold) == card.data.holdout.rows
    rows = np.searchsorted(predictions["cause"], hold["origin"])
    probs = predictions["meta"][rows]
    truth = hold["label"].astype(np.int64) + 1
    p_true = np.clip(probs[np.arange(len(truth)), truth], 1e-15, 1.0)
    assert float(-np.mean(np.log(p_true))) == card.metrics["meta"].log_loss
    assert np.isnan(predictions["context"]).all()
    assert np.isnan(predictions["micro"]).all()


def _chains(trained: Trained, scratch: Path, cuts: list[int], batch: int) -> list[Any]:
    log = EmbeddedLog(trained.data)
    run_config = config(trained.result.bundle)
    runner = Runner(
        log,
        journal_topic(SESSION),
        EmbeddedLog(scratch),
        "t",
        topology(log, run_config, trained.store),
    )
    runner.begin()
    for cut in sorted(cuts):
        runner.advance(stop=max(cut, runner.offset), batch=batch)
    runner.advance(batch=batch)
    runner.close()
    return [(s.port, s.count, s.chain) for s in runner.summaries()]


@pytest.fixture(scope="module")
def chains(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    return _chains(trained, tmp_path_factory.mktemp("chains"), [], 65536)


@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, 1020), max_size=6), batch=st.sampled_from([3, 50, 65536]))
def test_predictions_do_not_depend_on_slicing(
    trained: Trained,
    tmp_path_factory: pytest.TempPathFactory,
    chains: list[Any],
    cuts: list[int],
    batch: int,
) -> None:
    assert _chains(trained, tmp_path_factory.mktemp("sliced"), cuts, batch) == chains


def test_one_event_at_a_time_gives_identical_bytes(
    trained: Trained, tmp_path: Path, chains: list[Any]
) -> None:
    assert _chains(trained, tmp_path, [], 1) == chains


@settings(max_examples=3, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(every=st.sampled_from([97, 300]), kill_at=st.integers(1, 1000))
def test_resume_from_a_snapshot_matches_an_uninterrupted_run(
    trained: Trained,
    tmp_path_factory: pytest.TempPathFactory,
    chains: list[Any],
    every: int,
    kill_at: int,
) -> None:
    scratch = tmp_path_factory.mktemp("resume")
    snaps = scratch / "snapshots"
    log, sink = EmbeddedLog(trained.data), EmbeddedLog(scratch)
    run_config = config(trained.result.bundle)

    def runner() -> Runner:
        return Runner(
            log,
            journal_topic(SESSION),
            sink,
            "t",
            topology(log, run_config, trained.store),
            snaps,
            every,
        )

    first = runner()
    first.begin()
    first.advance(stop=kill_at, batch=64)
    first.close()
    second = runner()
    snapshot = latest_snapshot(snaps)
    if snapshot is None:
        second.begin()
    else:
        second.resume_from(snapshot)
    second.advance(batch=500)
    second.close()
    assert [(s.port, s.count, s.chain) for s in second.summaries()] == chains


def test_a_run_with_a_bundle_records_its_models_and_replays_bit_for_bit(
    trained: Trained, tmp_path: Path
) -> None:
    data = copy_samples(trained.data, tmp_path / "data")
    moved = tmp_path / "elsewhere"
    data.joinpath("models").rename(moved)
    runner = CliRunner()
    base = ["--data", str(data), "--fsync", "never"]
    bundle = trained.result.bundle
    args = ["run", SESSION, "--pipeline", "default", "--bundle", bundle[:10], "--quiet"]
    missing = runner.invoke(app, [*base, *args])
    assert missing.exit_code == 1
    assert f"no model whose hash starts with {bundle[:10]} in {data}/models" in flat(missing.output)
    done = runner.invoke(app, [*base, *args, "--run-id", "r", "--models", str(moved)])
    assert done.exit_code == 0, done.output
    manifest = read_manifest(data, "r")
    card = trained.result.card
    assert manifest.models == {"bundle": bundle, **card.hashes()}
    assert manifest.config["stages"]["models"]["bundle"] == bundle  # type: ignore[index]
    verified = runner.invoke(app, [*base, "replay", "r", "--verify", "--models", str(moved)])
    assert verified.exit_code == 0, verified.output
    assert "bit-for-bit identical" in verified.output
    without = runner.invoke(app, [*base, "replay", "r", "--verify"])
    assert without.exit_code == 1
    assert f"model {bundle} is not in {data}/models" in flat(without.output)


def test_bundle_needs_a_pipeline_with_the_models_stage(trained: Trained) -> None:
    bundle = trained.result.bundle[:8]
    command = ["run", SESSION, "--pipeline", "features", "--bundle", bundle]
    result = CliRunner().invoke(app, ["--data", str(trained.data), *command])
    assert result.exit_code == 1
    assert "--bundle needs a pipeline with the models stage; features has none" in flat(
        result.output
    )
    assert "default" in result.output


def test_execute_fills_the_manifest_models_field(trained: Trained, tmp_path: Path) -> None:
    data = copy_samples(trained.data, tmp_path / "data")
    log = EmbeddedLog(data)
    outcome = execute(
        log,
        SESSION,
        config(trained.result.bundle),
        models=ModelStore(data / "models"),
        pipelines=PIPELINES,
    )
    assert set(outcome.manifest.models) == {"bundle", "context", "micro", "meta"}
    plain = execute(log, SESSION, config(""), pipelines=PIPELINES)
    assert plain.manifest.models == {}
