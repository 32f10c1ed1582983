"""``tape train``: labelled rows from the log -> context, micro and meta CatBoost models -> a
bundle in the model store. See docs/models.md for every rule.

Steps: a ``labels`` run over the session (reused when an identical one exists); its features
joined with labels matured by ``--until``; a time-ordered holdout with purging and an embargo
of one horizon (:mod:`engine.app.training.split`); the meta-learner's training inputs out of fold,
in time order; final base models on all training rows; holdout metrics of all three through the
same compiled evaluator the ``models`` stage runs; artifacts and card to the store.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import polars as pl

from engine.app.training.data import (
    Cutoff,
    TrainError,
    labels_run,
    load_rows,
    matured_by,
    session_span,
)
from engine.app.training.fit import Fitted, Params, fit
from engine.app.training.metrics import majority, score
from engine.app.training.split import Split, forward_folds, holdout_split
from engine.events.decisions import CLASSES
from engine.log import EmbeddedLog
from engine.models import (
    ROLES,
    Member,
    Metrics,
    ModelCard,
    ModelStore,
    Rows,
    TrainingData,
    encode_card,
)
from engine.runtime.manifest import RunManifest, code_version
from engine.runtime.runner import Progress
from streams.features import FEATURE_SCHEMA_VERSION, FEATURES, INDEX, NAMES
from streams.models.ensemble import meta_inputs
from streams.models.trees import model_inputs, probabilities

CONTEXT_GROUPS = ("volatility", "returns", "temporal")
MICRO_GROUPS = ("order_flow", "volume", "microstructure", "technical")
META_FEATURES = ("realized_vol_60s", "spread_bps")
"""Regime inputs of the meta-learner: when volatility or the spread is high, one base model
may be more reliable than the other (docs/models.md)."""
MIN_TRAIN = 60
MIN_HOLDOUT = 20
LIBRARIES = ("catboost", "numpy", "polars", "numba", "msgspec")

Step = Callable[[str], None]


def group_columns(groups: tuple[str, ...]) -> list[str]:
    """Feature names of the given groups, in vector order."""
    return [f.name for f in FEATURES if f.group in groups]


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
    folds: int = 4
    labels: dict[str, Any] = field(default_factory=dict)
    """Overrides of the ``labels`` stage settings (horizon_ms, threshold_bp)."""


@dataclass(frozen=True)
class TrainResult:
    """A trained bundle and where its data came from."""

    bundle: str
    card: ModelCard
    run_id: str
    reused_run: bool


def _check(options: TrainOptions) -> None:
    if not 0.0 < options.holdout < 1.0:
        raise TrainError(
            f"--holdout must be between 0 and 1 (a share of rows), got {options.holdout}"
        )
    if options.folds < 2:
        raise TrainError(f"--folds must be >= 2, got {options.folds}")
    if options.threads < 1 or options.iterations < 1 or options.depth < 1:
        raise TrainError("--threads, --iterations and --depth must be >= 1")


def _rows(rows: pl.DataFrame, positions: np.ndarray) -> Rows:
    part = rows[positions]
    labels = part["label"].to_numpy()
    return Rows(
        rows=len(part),
        first_origin=int(part["origin"][0]),
        last_origin=int(part["origin"][-1]),
        last_maturity=int(part["maturity"].max()),  # type: ignore[arg-type]
        first_ts=int(part["origin_ts"][0]),
        last_ts=int(part["origin_ts"][-1]),
        class_counts={
            n: int(np.sum(labels == c))
            for n, c in zip(("down", "flat", "up"), CLASSES, strict=True)
        },
    )


def _enough(rows: pl.DataFrame, split: Split, cutoff: Cutoff, settings: dict[str, Any]) -> None:
    train, hold = len(split.train), len(split.holdout)
    if train >= MIN_TRAIN and hold >= MIN_HOLDOUT:
        counts = {c: int(np.sum(rows["label"].to_numpy()[split.train] == c)) for c in CLASSES}
        missing = [("down", "flat", "up")[i] for i, c in enumerate(CLASSES) if counts[c] == 0]
        if missing:
            raise TrainError(
                f"the {train} training labels have no {' or '.join(missing)} class (counts "
                f"down/flat/up {counts[-1]}/{counts[0]}/{counts[1]}): with horizon_ms "
                f"{settings['horizon_ms']} and threshold_bp {settings['threshold_bp']} the mid "
                "rarely moves that far; lower --threshold-bp or lengthen --horizon-ms"
            )
        return
    raise TrainError(
        f"too few labels: {len(rows)} matured by --until {cutoff.text}, leaving {train} to train "
        f"on (after purging and the embargo) and {hold} to hold out; need at least {MIN_TRAIN} "
        f"and {MIN_HOLDOUT}. Move --until later, or shorten --horizon-ms (now "
        f"{settings['horizon_ms']}), or ingest a longer session"
    )


class _Trainer:
    """One training: the rows, their split, and the fitted models."""

    def __init__(self, rows: pl.DataFrame, split: Split, options: TrainOptions, step: Step) -> None:
        self.rows, self.split, self.options, self.step = rows, split, options, step
        self.values = rows.select(NAMES).to_numpy().astype(np.float64)
        self.labels = rows["label"].to_numpy().astype(np.int64)
        self.columns = {
            "context": group_columns(CONTEXT_GROUPS),
            "micro": group_columns(MICRO_GROUPS),
            "meta": [f"{b}.{c}" for b in ("context", "micro") for c in ("down", "flat", "up")]
            + list(META_FEATURES),
        }
        self.indices = {r: [INDEX[c] for c in self.columns[r]] for r in ("context", "micro")}
        o = options
        self.params = {
            "context": Params(o.iterations, o.depth, o.learning_rate),
            "micro": Params(o.iterations, o.depth, o.learning_rate),
            "meta": Params(max(50, o.iterations // 2), min(3, o.depth), o.learning_rate),
        }

    def _fit(self, role: str, positions: np.ndarray) -> Fitted:
        x = model_inputs(self.values[positions], self.indices[role])
        o = self.options
        return fit(x, self.labels[positions], self.params[role], o.seed, o.threads)

    def _base_probs(
        self, fitted: dict[str, Fitted], positions: np.ndarray
    ) -> dict[str, np.ndarray]:
        return {
            role: probabilities(
                fitted[role].trees, model_inputs(self.values[positions], self.indices[role])
            )
            for role in ("context", "micro")
        }

    def out_of_fold(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Base-model probabilities for training rows, each from models that never saw it
        nor anything after it: the meta-learner's training inputs."""
        folds = forward_folds(
            self.rows, self.split.train, self.options.folds, self.split.embargo_ns
        )
        positions: list[np.ndarray] = []
        probs: dict[str, list[np.ndarray]] = {"context": [], "micro": []}
        for k, (fit_rows, predict_rows) in enumerate(folds, 1):
            if len(fit_rows) < MIN_TRAIN // 2 or len(set(self.labels[fit_rows].tolist())) < 3:
                continue  # too early in the session for a model of all three classes
            self.step(f"out-of-fold {k}/{len(folds)}: fitting on {len(fit_rows)} rows")
            fitted = {r: self._fit(r, fit_rows) for r in ("context", "micro")}
            for role, p in self._base_probs(fitted, predict_rows).items():
                probs[role].append(p)
            positions.append(predict_rows)
        if not positions:
            raise TrainError(
                f"too few training rows ({len(self.split.train)}) for out-of-fold predictions: "
                "the earliest fold needs all three classes; move --until later or use --folds 2"
            )
        return np.concatenate(positions), {r: np.concatenate(p) for r, p in probs.items()}

    def run(self) -> tuple[dict[str, Fitted], dict[str, Metrics]]:
        """Fit the three models; their holdout metrics."""
        meta_rows, oof = self.out_of_fold()
        if len(set(self.labels[meta_rows].tolist())) < 3:
            raise TrainError(
                "the out-of-fold rows lack a class; move --until later or use --folds 2"
            )
        self.step(f"context and micro models on {len(self.split.train)} rows")
        fitted = {r: self._fit(r, self.split.train) for r in ("context", "micro")}
        self.step(f"meta-learner on {len(meta_rows)} out-of-fold rows")
        meta_x = meta_inputs(self.columns["meta"], oof, self.values[meta_rows])
        o = self.options
        fitted["meta"] = fit(meta_x, self.labels[meta_rows], self.params["meta"], o.seed, o.threads)
        hold = self.split.holdout
        probs = self._base_probs(fitted, hold)
        probs["meta"] = probabilities(
            fitted["meta"].trees, meta_inputs(self.columns["meta"], probs, self.values[hold])
        )
        baseline = majority(self.labels[self.split.train])
        return fitted, {r: score(probs[r], self.labels[hold], baseline) for r in ROLES}


def train(
    log: EmbeddedLog,
    session: str,
    options: TrainOptions,
    store: ModelStore,
    on_progress: Callable[[Progress], None] | None = None,
    step: Step = lambda _: None,
) -> TrainResult:
    """Train a bundle on ``session`` (see the module docstring); it is in ``store`` after."""
    _check(options)
    step("labels run over the session")
    manifest, reused = labels_run(log, session, options.labels, on_progress)
    settings = manifest.config["stages"]["labels"]  # type: ignore[index]
    horizon_ns = int(settings["horizon_ms"]) * 1_000_000
    step("joining features with labels")
    every = load_rows(log, manifest)
    rows, until_ts = matured_by(
        every.filter(~every["undefined"]), options.cutoff, session_span(log, manifest)
    )
    split = holdout_split(rows, options.holdout, horizon_ns)
    _enough(rows, split, options.cutoff, settings)
    trainer = _Trainer(rows, split, options, step)
    fitted, metrics = trainer.run()
    members = {
        role: Member(
            store.put(fitted[role].artifact),
            trainer.columns[role],
            trainer.params[role].catboost(options.seed, options.threads),
        )
        for role in ROLES
    }
    card = ModelCard(
        models=members,
        data=_lineage(manifest, options, rows, split, until_ts),
        meta_scheme=f"forward out-of-fold: training rows cut into {options.folds} consecutive "
        "blocks; block k scored by context and micro models fitted on the earlier blocks "
        "(purged, one-horizon embargo); the meta-learner is fitted on those scores",
        seed=options.seed,
        thread_count=options.threads,
        libraries=_libraries(),
        metrics=metrics,
    )
    return TrainResult(store.put(encode_card(card)), card, manifest.run_id, reused)


def _lineage(
    manifest: RunManifest, options: TrainOptions, rows: pl.DataFrame, split: Split, until_ts: int
) -> TrainingData:
    """Where the rows came from and how they were split, for the card."""
    stages: dict[str, dict[str, Any]] = manifest.config["stages"]  # type: ignore[assignment]
    return TrainingData(
        session=manifest.session,
        run_id=manifest.run_id,
        journal_topic=manifest.journal_topic,
        journal_start=manifest.journal_start,
        journal_stop=manifest.journal_stop,
        until=options.cutoff.text,
        until_ts=until_ts,
        feature_schema=FEATURE_SCHEMA_VERSION,
        features=dict(stages["features"]),
        labels=dict(stages["labels"]),
        holdout_fraction=options.holdout,
        embargo_ns=split.embargo_ns,
        train=_rows(rows, split.train),
        holdout=_rows(rows, split.holdout),
    )


def _libraries() -> dict[str, str]:
    code = code_version()
    out = {name: metadata.version(name) for name in LIBRARIES}
    out["python"] = platform.python_version()
    out["tapedeck"] = code.commit + ("+dirty" if code.dirty else "")
    return out
