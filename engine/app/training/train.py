"""``tape train``: labelled rows from the log -> base CatBoost models and a meta-learner -> a
bundle in the model store. See docs/models.md for every rule.

Steps: a ``labels`` run over each session (reused when an identical one exists); its features
joined with labels matured by ``--until``; a time-ordered holdout with purging and an embargo
of one horizon (:mod:`engine.app.training.split`); then :class:`Fitter`: the meta-learner's
training inputs out of fold, in time order; final base models on all training rows; holdout
metrics of every model through the same compiled evaluator the ``models`` stage runs.
Artifacts and card go to the store. :mod:`engine.app.training.walkforward` fits one bundle per
fold with the same :class:`Fitter`.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import polars as pl

from engine.app.training.data import Cutoff, Labelled, TrainError, labelled, matured_by
from engine.app.training.fit import Fitted, Params, fit
from engine.app.training.layers import DEFAULT_LAYERS, LAYERS, base_columns, meta_columns
from engine.app.training.metrics import score
from engine.app.training.split import Split, forward_folds, holdout_split
from engine.events.decisions import CLASSES
from engine.log import EmbeddedLog
from engine.models import (
    META,
    Member,
    Metrics,
    ModelCard,
    ModelStore,
    Rows,
    SessionSource,
    TrainingData,
    encode_card,
)
from engine.runtime.manifest import code_version
from engine.runtime.runner import Progress
from streams.features import FEATURE_SCHEMA_VERSION, INDEX, NAMES
from streams.models.ensemble import meta_inputs
from streams.models.trees import model_inputs, probabilities

MIN_TRAIN = 60
MIN_HOLDOUT = 20
LIBRARIES = ("catboost", "numpy", "polars", "numba", "msgspec")

Step = Callable[[str], None]


@dataclass(frozen=True)
class TrainOptions:
    """What ``tape train`` is asked to do."""

    cutoff: Cutoff
    holdout: float = 0.2
    seed: int = 0
    threads: int = 1
    iterations: int = 100
    depth: int = 4
    learning_rate: float = 0.05
    meta_folds: int = 4
    labels: dict[str, Any] = field(default_factory=dict)
    """Overrides of the ``labels`` stage settings (horizon_ms, threshold_bp)."""
    layers: str = DEFAULT_LAYERS
    """The base models' design (:data:`~engine.app.training.layers.LAYERS`)."""

    def params(self) -> dict[str, Params]:
        """CatBoost settings by role: the base models', then the meta-learner's (lighter; a
        merged design's single model gets the base settings)."""
        base = Params(self.iterations, self.depth, self.learning_rate)
        out = dict.fromkeys(LAYERS[self.layers], base)
        stacked = Params(max(50, self.iterations // 2), min(3, self.depth), self.learning_rate)
        out[META] = stacked if LAYERS[self.layers] else base
        return out


@dataclass(frozen=True)
class TrainResult:
    """A trained bundle and where its data came from."""

    bundle: str
    card: ModelCard
    run_id: str
    reused_run: bool


def check_options(options: TrainOptions) -> None:
    """Refuse settings no training can use, naming the option."""
    if not 0.0 < options.holdout < 1.0:
        raise TrainError(
            f"--holdout must be between 0 and 1 (a share of rows), got {options.holdout}"
        )
    if options.meta_folds < 2:
        raise TrainError(f"--meta-folds must be >= 2, got {options.meta_folds}")
    if options.threads < 1 or options.iterations < 1 or options.depth < 1:
        raise TrainError("--threads, --iterations and --depth must be >= 1")
    if options.layers not in LAYERS:
        raise TrainError(f"--layers must be one of {', '.join(LAYERS)}, got {options.layers!r}")


def rows_of(rows: pl.DataFrame, positions: np.ndarray, sources: list[SessionSource]) -> Rows:
    """A span of rows for the card: offsets, times, sessions and class counts."""
    part = rows[positions]
    labels = part["label"].to_numpy()
    first, last = int(part["part"][0]), int(part["part"][-1])
    return Rows(
        rows=len(part),
        first_origin=int(part["origin"][0]),
        last_origin=int(part["origin"][-1]),
        last_maturity=int(part.filter(pl.col("part") == last)["maturity"].max()),  # type: ignore[arg-type]
        first_ts=int(part["origin_ts"][0]),
        last_ts=int(part["origin_ts"][-1]),
        class_counts={
            n: int(np.sum(labels == c))
            for n, c in zip(("down", "flat", "up"), CLASSES, strict=True)
        },
        first_session=sources[first].session,
        last_session=sources[last].session,
    )


def check_split(rows: pl.DataFrame, split: Split, what: str, settings: dict[str, Any]) -> None:
    """Refuse a split with too few rows or a class missing from training; ``what`` says which
    split (e.g. ``--until 8%`` or ``fold 3``) and is followed by what to do."""
    train, hold = len(split.train), len(split.holdout)
    if train < MIN_TRAIN or hold < MIN_HOLDOUT:
        raise TrainError(
            f"too few labels: {what}, leaving {train} to train on (after purging and the "
            f"embargo) and {hold} to hold out; need at least {MIN_TRAIN} and {MIN_HOLDOUT}. "
            f"Move --until later, or shorten --horizon-ms (now {settings['horizon_ms']}), or "
            "ingest a longer session"
        )
    counts = {c: int(np.sum(rows["label"].to_numpy()[split.train] == c)) for c in CLASSES}
    missing = [("down", "flat", "up")[i] for i, c in enumerate(CLASSES) if counts[c] == 0]
    if missing:
        raise TrainError(
            f"the {train} training labels have no {' or '.join(missing)} class (counts "
            f"down/flat/up {counts[-1]}/{counts[0]}/{counts[1]}): with horizon_ms "
            f"{settings['horizon_ms']} and threshold_bp {settings['threshold_bp']} the mid "
            "rarely moves that far; lower --threshold-bp or lengthen --horizon-ms"
        )


class Fitter:
    """Fits a bundle's models on any split of one set of rows (converted to arrays once)."""

    def __init__(self, rows: pl.DataFrame, options: TrainOptions, step: Step) -> None:
        self.rows, self.options, self.step = rows, options, step
        self.values = rows.select(NAMES).to_numpy().astype(np.float64)
        self.labels = rows["label"].to_numpy().astype(np.int64)
        self.columns = {**base_columns(options.layers), META: meta_columns(options.layers)}
        self.bases = list(LAYERS[options.layers])
        self.indices = {r: [INDEX[c] for c in self.columns[r]] for r in self.bases}
        self.params = options.params()

    def _fit(self, role: str, positions: np.ndarray) -> Fitted:
        x = model_inputs(self.values[positions], self.indices[role])
        o = self.options
        return fit(x, self.labels[positions], self.params[role], o.seed, o.threads)

    def _base_probs(
        self, fitted: dict[str, Fitted], positions: np.ndarray
    ) -> dict[str, np.ndarray]:
        values = self.values[positions]
        return {
            role: probabilities(fitted[role].trees, model_inputs(values, self.indices[role]))
            for role in self.bases
        }

    def out_of_fold(self, split: Split) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Base-model probabilities for training rows, each from models that never saw it
        nor anything after it: the meta-learner's training inputs."""
        folds = forward_folds(self.rows, split.train, self.options.meta_folds, split.embargo_ns)
        positions: list[np.ndarray] = []
        probs: dict[str, list[np.ndarray]] = {r: [] for r in self.bases}
        for k, (fit_rows, predict_rows) in enumerate(folds, 1):
            if len(fit_rows) < MIN_TRAIN // 2 or len(set(self.labels[fit_rows].tolist())) < 3:
                continue  # too early in the session for a model of all three classes
            self.step(f"out-of-fold {k}/{len(folds)}: fitting on {len(fit_rows)} rows")
            fitted = {r: self._fit(r, fit_rows) for r in self.bases}
            for role, p in self._base_probs(fitted, predict_rows).items():
                probs[role].append(p)
            positions.append(predict_rows)
        if not positions:
            raise TrainError(
                f"too few training rows ({len(split.train)}) for out-of-fold predictions: "
                "the earliest fold needs all three classes; move --until later or use "
                "--meta-folds 2"
            )
        return np.concatenate(positions), {r: np.concatenate(p) for r, p in probs.items()}

    def run(self, split: Split) -> tuple[dict[str, Fitted], dict[str, Metrics]]:
        """Fit every model on ``split.train``; their metrics on ``split.holdout``."""
        if not self.bases:
            return self._run_merged(split)
        meta_rows, oof = self.out_of_fold(split)
        if len(set(self.labels[meta_rows].tolist())) < 3:
            raise TrainError(
                "the out-of-fold rows lack a class; move --until later or use --meta-folds 2"
            )
        self.step(f"{', '.join(self.bases)} models on {len(split.train)} rows")
        fitted = {r: self._fit(r, split.train) for r in self.bases}
        self.step(f"meta-learner on {len(meta_rows)} out-of-fold rows")
        meta_x = meta_inputs(self.columns[META], oof, self.values[meta_rows])
        o = self.options
        fitted[META] = fit(meta_x, self.labels[meta_rows], self.params[META], o.seed, o.threads)
        probs = self.predict(fitted, split.holdout)
        training = self.labels[split.train]
        return fitted, {r: score(probs[r], self.labels[split.holdout], training) for r in probs}

    def _run_merged(self, split: Split) -> tuple[dict[str, Fitted], dict[str, Metrics]]:
        """One model over every feature, fitted on all training rows."""
        self.step(f"one model over {len(self.columns[META])} features on {len(split.train)} rows")
        meta_x = meta_inputs(self.columns[META], {}, self.values[split.train])
        o = self.options
        fitted = {META: fit(meta_x, self.labels[split.train], self.params[META], o.seed, o.threads)}
        probs = self.predict(fitted, split.holdout)
        training = self.labels[split.train]
        return fitted, {META: score(probs[META], self.labels[split.holdout], training)}

    def predict(self, fitted: dict[str, Fitted], positions: np.ndarray) -> dict[str, np.ndarray]:
        """Every model's probabilities for these rows, as the ``models`` stage computes them."""
        probs = self._base_probs(fitted, positions)
        meta_x = meta_inputs(self.columns[META], probs, self.values[positions])
        probs[META] = probabilities(fitted[META].trees, meta_x)
        return probs

    def card(
        self,
        fitted: dict[str, Fitted],
        metrics: dict[str, Metrics],
        data: TrainingData,
        store: ModelStore,
    ) -> tuple[str, ModelCard]:
        """Store the fitted models and their card; the bundle hash and the card."""
        o = self.options
        members = {
            role: Member(
                store.put(fitted[role].artifact),
                self.columns[role],
                self.params[role].catboost(o.seed, o.threads),
            )
            for role in [*self.bases, META]
        }
        scheme = (
            f"forward out-of-fold: training rows cut into {o.meta_folds} consecutive blocks; "
            f"block k scored by {' and '.join(self.bases)} models fitted on the earlier blocks "
            "(purged, one-horizon embargo); the meta-learner is fitted on those scores"
            if self.bases
            else "merged: one model over every feature, fitted on all training rows"
        )
        card = ModelCard(
            models=members,
            data=data,
            meta_scheme=scheme,
            seed=o.seed,
            thread_count=o.threads,
            libraries=libraries(),
            metrics=metrics,
        )
        return store.put(encode_card(card)), card


def lineage(
    data: Labelled, split: Split, until: str, until_ts: int, holdout_fraction: float
) -> TrainingData:
    """Where a split's rows came from and how they were cut, for the card."""
    rows = data.rows
    used = sorted({int(p) for p in rows[np.concatenate([split.train, split.holdout])]["part"]})
    last = data.manifests[used[-1]]
    stages: dict[str, dict[str, Any]] = last.config["stages"]  # type: ignore[assignment]
    return TrainingData(
        session=last.session,
        run_id=last.run_id,
        journal_topic=last.journal_topic,
        journal_start=last.journal_start,
        journal_stop=last.journal_stop,
        until=until,
        until_ts=until_ts,
        feature_schema=FEATURE_SCHEMA_VERSION,
        features=dict(stages["features"]),
        labels=dict(stages["labels"]),
        holdout_fraction=holdout_fraction,
        embargo_ns=split.embargo_ns,
        train=rows_of(rows, split.train, data.sources),
        holdout=rows_of(rows, split.holdout, data.sources),
        in_sample_until=until_ts + split.embargo_ns,
        sessions=[data.sources[i] for i in used],
    )


def train(
    log: EmbeddedLog,
    sessions: str | list[str],
    options: TrainOptions,
    store: ModelStore,
    on_progress: Callable[[Progress], None] | None = None,
    step: Step = lambda _: None,
) -> TrainResult:
    """Train a bundle on ``sessions`` (see the module docstring); it is in ``store`` after."""
    check_options(options)
    names = [sessions] if isinstance(sessions, str) else sessions
    data = labelled(log, names, options.labels, on_progress, step)
    first, last = data.sources[0].first_ts, data.sources[-1].last_ts
    rows, until_ts = matured_by(data.rows, options.cutoff, (first, last))
    split = holdout_split(rows, options.holdout, data.horizon_ns)
    check_split(rows, split, f"{len(rows)} matured by --until {options.cutoff.text}", data.settings)
    fitter = Fitter(rows, options, step)
    fitted, metrics = fitter.run(split)
    stacked = Labelled(rows, data.sources, data.manifests, data.reused)
    card_data = lineage(stacked, split, options.cutoff.text, until_ts, options.holdout)
    bundle, card = fitter.card(fitted, metrics, card_data, store)
    return TrainResult(bundle, card, card_data.run_id, all(data.reused))


def libraries() -> dict[str, str]:
    """Versions of the libraries training depends on, Python's and the checkout's commit."""
    code = code_version()
    out = {name: metadata.version(name) for name in LIBRARIES}
    out["python"] = platform.python_version()
    out["tapedeck"] = code.commit + ("+dirty" if code.dirty else "")
    return out
