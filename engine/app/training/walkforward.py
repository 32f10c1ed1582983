"""``tape train SESSION... --walk-forward``: one bundle per fold, all on one card.

The defined labelled rows of the sessions (oldest first) are cut into consecutive test
windows on a clock that runs only inside sessions (:func:`~engine.app.training.split.walk_forward`).
For each window a :class:`~engine.app.training.train.Fitter` fits a bundle on the rows the
purge and embargo rule allows before it (expanding: all of them; rolling: the last window's
worth) and scores it on the window. Every fold's metrics, and the pooled metrics over all the
windows, are therefore out of sample. The walk-forward card lists the folds with their windows,
their bundles and where each takes effect (docs/models.md, "Walk-forward").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.app.training.data import Labelled, TrainError, labelled
from engine.app.training.layers import LAYERS
from engine.app.training.metrics import pooled
from engine.app.training.split import Split, Windows, walk_forward
from engine.app.training.train import (
    Fitter,
    Step,
    TrainOptions,
    check_options,
    check_split,
    libraries,
    lineage,
    rows_of,
)
from engine.log import EmbeddedLog
from engine.models import META, Fold, ModelCard, ModelStore, WalkForwardCard, encode_schedule
from engine.runtime.runner import Progress


@dataclass(frozen=True)
class WalkForwardResult:
    """A walk-forward card, its folds' bundle cards, and the pooled out-of-sample scores."""

    schedule: str
    """Hash of the walk-forward card in the store."""
    card: WalkForwardCard
    bundles: list[ModelCard]


def _fold(
    k: int, data: Labelled, split: Split, fitter: Fitter, store: ModelStore
) -> tuple[Fold, ModelCard, dict[str, np.ndarray]]:
    """Fit and score fold ``k``; its schedule entry, its bundle's card, its test probabilities."""
    rows = data.rows
    check_split(
        rows,
        split,
        f"walk-forward fold {k} has {len(split.train) + len(split.holdout)} rows",
        data.settings,
    )
    fitted, metrics = fitter.run(split)
    start_ts = int(rows["origin_ts"][int(split.holdout[0])])
    until_ts = start_ts - split.embargo_ns
    card_data = lineage(data, split, f"walk-forward fold {k}", until_ts, 0.0)
    bundle, card = fitter.card(fitted, metrics, card_data, store)
    test = rows_of(rows, split.holdout, data.sources)
    fold = Fold(
        index=k,
        bundle=bundle,
        train=card_data.train,
        test=test,
        switch_session=test.first_session,
        switch_offset=test.first_origin,
        switch_ts=test.first_ts,
        in_sample_until=card_data.in_sample_until,
        metrics=metrics,
    )
    return fold, card, fitter.predict(fitted, split.holdout)


def train_walk_forward(
    log: EmbeddedLog,
    sessions: list[str],
    options: TrainOptions,
    windows: Windows,
    store: ModelStore,
    on_progress: Callable[[Progress], None] | None = None,
    step: Step = lambda _: None,
) -> WalkForwardResult:
    """Fit and score every fold (see the module docstring); the card is in ``store`` after."""
    check_options(options)
    if windows.folds < 0 or (not windows.folds and (windows.train_ns <= 0 or windows.test_ns <= 0)):
        raise TrainError("give --folds N (N >= 1), or both --train and --test as durations > 0")
    data = labelled(log, sessions, options.labels, on_progress, step)
    splits = walk_forward(data.rows, data.sources, windows, data.horizon_ns)
    if not splits:
        raise TrainError(
            "no walk-forward test window holds a labelled row: the training window is as long "
            "as the data; use fewer --folds or a shorter --train"
        )
    fitter = Fitter(data.rows, options, step)
    folds: list[Fold] = []
    cards: list[ModelCard] = []
    scored: dict[str, list[np.ndarray]] = {}
    for k, split in enumerate(splits):
        step(
            f"fold {k + 1}/{len(splits)}: fitting on {len(split.train)} rows, testing "
            f"on {len(split.holdout)}"
        )
        fold, card, probs = _fold(k, data, split, fitter, store)
        folds.append(fold)
        cards.append(card)
        for role, p in probs.items():
            scored.setdefault(role, []).append(p)
    labels = data.rows["label"].to_numpy()
    tests = [labels[s.holdout] for s in splits]
    trains = [labels[s.train] for s in splits]
    params = options.params()
    schedule = WalkForwardCard(
        scheme="rolling" if windows.rolling else "expanding",
        folds_requested=windows.folds,
        train_ns=windows.train_ns,
        test_ns=windows.test_ns,
        embargo_ns=data.horizon_ns,
        sessions=data.sources,
        labels=data.settings,
        features=cards[0].data.features,
        layers=options.layers,
        params={
            role: params[role].catboost(options.seed, options.threads)
            for role in [*LAYERS[options.layers], META]
        },
        seed=options.seed,
        thread_count=options.threads,
        libraries=libraries(),
        folds=folds,
        pooled={role: pooled(p, tests, trains) for role, p in scored.items()},
    )
    return WalkForwardResult(store.put(encode_schedule(schedule)), schedule, cards)
