"""The retraining gate: a candidate bundle is promoted only if it beats the current one and the
baseline, out of sample, on the latest fold of labelled data (docs/models.md, "Retraining").

The candidate is trained on the sessions with their latest share of labelled rows held out
(``TrainOptions.holdout``, purged and embargoed as always); that held-out *latest fold* is
where both are scored: the candidate's meta-learner (out of sample by construction), the
current bundle (its meta-learner, evaluated the way the ``models`` stage evaluates it) and the
baseline (the candidate's training class frequencies). The decision and every number go into a
``model.candidate_evaluated`` event, promoted or not; a promotion adds ``model.promoted``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.app.training.data import Cutoff, TrainError, labelled
from engine.app.training.metrics import log_loss
from engine.app.training.train import Step, TrainOptions, TrainResult, train
from engine.events.control import CandidateEvaluated, ModelPromoted
from engine.log import EmbeddedLog
from engine.models import ModelStore, WalkForwardCard, load_any, load_card
from engine.runtime.runner import Progress
from streams.features import NAMES
from streams.models.ensemble import Ensemble

GATE = "gate"


@dataclass(frozen=True)
class GateDecision:
    """What the gate decided, and the events that record it."""

    candidate: TrainResult
    evaluated: CandidateEvaluated
    promoted: ModelPromoted | None

    @property
    def events(self) -> list[CandidateEvaluated | ModelPromoted]:
        """The events to journal, in order."""
        return [self.evaluated] if self.promoted is None else [self.evaluated, self.promoted]


def current_bundle(store: ModelStore, ref: str) -> str:
    """The bundle a reference stands for at the end of its data: itself, or the last fold's
    bundle of a walk-forward card."""
    card = load_any(store, ref)
    return card.folds[-1].bundle if isinstance(card, WalkForwardCard) else ref


def evaluate(
    log: EmbeddedLog,
    sessions: list[str],
    current: str | None,
    options: TrainOptions,
    store: ModelStore,
    on_progress: Callable[[Progress], None] | None = None,
    step: Step = lambda _: None,
    operator: str = GATE,
) -> GateDecision:
    """Train a candidate and decide (see the module docstring)."""
    full = TrainOptions(**{**options.__dict__, "cutoff": Cutoff("100%", fraction=1.0)})
    candidate = train(log, sessions, full, store, on_progress, step)
    hold = candidate.card.data.holdout
    data = labelled(log, sessions, options.labels)
    rows = data.rows.filter(
        (data.rows["origin"] >= hold.first_origin)
        & (data.rows["origin"] <= hold.last_origin)
        & (data.rows["part"] == data.rows["part"].max())
    )
    if len(rows) != hold.rows:
        raise TrainError(
            f"the latest fold has {len(rows)} rows; the candidate held out {hold.rows}"
        )
    labels = rows["label"].to_numpy()
    ours = candidate.card.metrics["meta"]
    base = ours.baseline_log_loss if ours.baseline_log_loss is not None else math.nan
    theirs, note = math.nan, "no current bundle"
    if current:
        bundle = current_bundle(store, current)
        ensemble = Ensemble(load_card(store, bundle), store.get)
        probs = ensemble.predict(rows.select(NAMES).to_numpy().astype(np.float64))["meta"]
        theirs = log_loss(probs, labels)
        seen = ensemble.card.data.in_sample_until > hold.first_ts
        note = f"current {bundle[:12]}" + (
            " (fitted on part of this fold: its score here is in sample, optimistic)"
            if seen
            else ""
        )
    promoted = ours.log_loss < base and (math.isnan(theirs) or ours.log_loss < theirs)
    detail = (
        f"{'promoted' if promoted else 'kept the current bundle'}: candidate log loss "
        f"{ours.log_loss:.4f} vs {note} {theirs:.4f} and baseline {base:.4f} on {hold.rows} rows"
    )
    now = time.time_ns()
    evaluated = CandidateEvaluated(
        now,
        now,
        candidate.bundle,
        current or "",
        hold.last_session,
        hold.first_origin,
        hold.last_origin,
        hold.rows,
        ours.log_loss,
        theirs,
        base,
        promoted,
        detail,
    )
    promotion = (
        ModelPromoted(now, now, candidate.bundle, current or "", GATE, operator)
        if promoted
        else None
    )
    return GateDecision(candidate, evaluated, promotion)
