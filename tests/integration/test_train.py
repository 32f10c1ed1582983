"""``tape train`` on the real samples: determinism, the leakage guards, the CLI and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from engine.app.cli import app
from engine.app.cli.train_commands import parse_cutoff
from engine.app.training import Cutoff
from engine.app.training.data import labels_run, load_rows, matured_by, session_span
from engine.app.training.split import forward_folds, holdout_split
from engine.log import EmbeddedLog
from engine.runtime import read_manifest
from tests.models_helpers import SESSION, copy_samples, train_on


def flat(text: str) -> str:
    return " ".join(text.split())


def test_training_twice_gives_identical_artifacts(samples_master: Path, tmp_path: Path) -> None:
    """Same data, parameters, seed and threads: the same bundle and model hashes, whether the
    labels run is reused or recomputed in another data directory."""
    first = train_on(copy_samples(samples_master, tmp_path / "a"), until="70%")
    again = train_on(first.data, until="70%")
    elsewhere = train_on(copy_samples(samples_master, tmp_path / "b"), until="70%")
    assert again.result.reused_run
    assert not elsewhere.result.reused_run
    for other in (again, elsewhere):
        assert other.result.bundle == first.result.bundle
        assert other.result.card.hashes() == first.result.card.hashes()
    reseeded = train_on(first.data, until="70%", seed=1)
    assert reseeded.result.bundle != first.result.bundle
    card = first.result.card
    assert card.seed == 0
    assert card.thread_count == 1
    assert set(card.libraries) >= {"catboost", "numpy", "polars", "python", "tapedeck"}
    assert card.data.labels == {"horizon_ms": 1000, "threshold_bp": 0.3}
    assert card.models["meta"].params["random_seed"] == 0


# -- leakage guards -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(samples_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = copy_samples(samples_master, tmp_path_factory.mktemp("leak") / "data")
    log = EmbeddedLog(data)
    manifest, _ = labels_run(log, SESSION, {})
    rows = load_rows(log, manifest)
    return {
        "rows": rows.filter(~rows["undefined"]),
        "span": session_span(log, manifest),
        "horizon": 1000 * 1_000_000,
    }


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    share=st.floats(0.3, 1.0),
    holdout=st.floats(0.05, 0.5),
    folds=st.integers(2, 6),
)
def test_no_label_maturing_after_until_or_inside_the_embargo_is_trained_on(
    labelled: dict, share: float, holdout: float, folds: int
) -> None:
    rows, until_ts = matured_by(labelled["rows"], Cutoff("x", fraction=share), labelled["span"])
    assert (rows["maturity_ts"] <= until_ts).all()
    everything = labelled["rows"]
    assert len(rows) == int((everything["maturity_ts"] <= until_ts).sum())
    split = holdout_split(rows, holdout, labelled["horizon"])
    start = int(split.holdout[0])
    c_h, t_h = int(rows["origin"][start]), int(rows["origin_ts"][start])
    train = rows[split.train]
    assert (train["maturity"] < c_h).all()
    assert (train["maturity_ts"] <= t_h - labelled["horizon"]).all()
    assert (train["origin_ts"] < t_h - 2 * labelled["horizon"]).all()
    # nothing was dropped that the rule allowed
    allowed = (rows["maturity"] < c_h) & (rows["maturity_ts"] <= t_h - labelled["horizon"])
    assert len(train) == int(allowed[:start].sum())
    for fit_rows, block in forward_folds(rows, split.train, folds, labelled["horizon"]):
        first = int(block[0])
        fitted = rows[fit_rows]
        assert (fitted["maturity"] < int(rows["origin"][first])).all()
        assert (fitted["maturity_ts"] <= int(rows["origin_ts"][first]) - labelled["horizon"]).all()
        assert set(fit_rows.tolist()) <= set(split.train.tolist())


def test_an_offset_cutoff_keeps_labels_matured_at_or_before_it(labelled: dict) -> None:
    rows: pl.DataFrame = labelled["rows"]
    cut = int(rows["maturity"][len(rows) // 2])
    kept, until_ts = matured_by(rows, Cutoff(str(cut), offset=cut), labelled["span"])
    assert (kept["maturity"] <= cut).all()
    assert len(kept) == int((rows["maturity"] <= cut).sum())
    assert until_ts == int(kept["maturity_ts"].max())  # type: ignore[arg-type]


def test_the_card_records_the_split(samples_master: Path, tmp_path: Path) -> None:
    trained = train_on(copy_samples(samples_master, tmp_path / "data"), until="90%")
    d = trained.result.card.data
    assert d.train.last_maturity < d.holdout.first_origin
    assert d.embargo_ns == 1000 * 1_000_000
    assert d.holdout.first_ts - d.train.last_ts > 2 * d.embargo_ns
    assert d.until == "90%"
    manifest = read_manifest(trained.data, trained.result.run_id)
    assert (d.journal_start, d.journal_stop) == (manifest.journal_start, manifest.journal_stop)
    assert d.train.rows + d.holdout.rows <= 922
    counts = trained.result.card.metrics["meta"].classes
    assert sum(c.count for c in counts.values()) == d.holdout.rows


# -- the command line -------------------------------------------------------------------------


def test_until_accepts_offsets_times_and_shares() -> None:
    assert parse_cutoff("812").offset == 812
    assert parse_cutoff("60%").fraction == 0.6
    assert parse_cutoff("2012-06-21T13:30:30Z").ts == 1340285430 * 10**9
    import typer

    for bad in ("soon", "0%", "140%"):
        with pytest.raises(typer.BadParameter):
            parse_cutoff(bad)


def test_tape_train_prints_metrics_and_the_run_command(samples: Path) -> None:
    result = CliRunner().invoke(
        app, ["--data", str(samples), "train", SESSION, "--until", "75%", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "holdout metrics" in text
    assert "meta" in text
    bundle = next(w for w in text.split() if len(w) == 64)
    assert (samples / "models" / bundle).is_file()
    assert re.search(rf"tape run {SESSION} --pipeline \S+ --bundle {bundle[:12]}", text), text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--until", "50%"], "no session 'nope'"),
        ([SESSION, "--until", "90%", "--threshold-bp", "1000"], "have no down or up class"),
        ([SESSION, "--until", "90%", "--holdout", "1.5"], "--holdout must be between 0 and 1"),
    ],
)
def test_tape_train_errors_say_what_to_do(samples: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--data", str(samples), "train", *args, "--quiet"])
    assert result.exit_code == 1, result.output
    assert re.search(message, flat(result.output)), result.output


def test_too_few_labels_says_how_many_and_what_to_do(samples: Path) -> None:
    result = CliRunner().invoke(
        app, ["--data", str(samples), "train", SESSION, "--until", "8%", "--quiet"]
    )
    assert result.exit_code == 1
    text = flat(result.output)
    found = re.search(
        r"too few labels: (\d+) matured by --until 8%, leaving (\d+) to train on \(after purging "
        r"and the embargo\) and (\d+) to hold out; need at least 60 and 20\. Move --until later",
        text,
    )
    assert found, text
    matured, train, hold = (int(g) for g in found.groups())
    assert hold > 0
    assert train + hold <= matured
