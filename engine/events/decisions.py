"""Derived decision events: labels, model predictions, agent votes and consensus decisions.

Each is a fixed-width little-endian record (like ``book.top``): up to one per feature vector, so
a batch read from a run topic is a zero-copy numpy array. Every record carries ``cause``, the
journal offset after which it was computed, and ``ts_event``, the event-time clock at that
moment. Directions are ``-1`` (down / sell), ``0`` (flat) and ``+1`` (up / buy); probability
triples are ordered ``(down, flat, up)``. ``NaN`` marks a value that is undefined.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.events.types import Codec, EventType, FieldDoc, FieldSpec, fixed_dtype

CLASSES = (-1, 0, 1)
"""Label classes in the order of every probability triple: down, flat, up."""
AGENTS = ("order_flow", "liquidity", "tape_reading", "footprint")
"""The agents, in the order of ``agents.votes`` arrays."""
CONTRIBUTORS = ("meta", "online", *AGENTS)
"""Who contributes to a consensus decision, in the order of its arrays: the CatBoost
meta-learner, the online model, then the four agents."""

# flags of labels.label
L_UNDEFINED = 0x01
"""No two-sided mid at the origin or at the horizon: ``label`` is 0 and ``move`` NaN."""

# flags of model.prediction
P_NO_BUNDLE = 0x01
"""No CatBoost model bundle configured: context, micro and meta are NaN."""
P_ONLINE_COLD = 0x02
"""The online model has learnt from no label yet: ``online`` is NaN."""
P_NO_MODEL = 0x04
"""Neither source gave a probability: ``probs`` is NaN and ``direction`` 0."""
P_IN_SAMPLE = 0x08
"""The bundle in effect was fitted on data up to this vector's time (its training cut plus the
embargo is at or after it): the prediction is in sample, not evidence of skill."""

# flags of consensus.decision
D_WARMING_UP = 0x01
"""The feature vector behind it was still warming up; decisions are flat until it is not."""


def _docs(fields: tuple[FieldSpec, ...]) -> tuple[FieldDoc, ...]:
    def kind(t: Any) -> str:
        if isinstance(t, str):
            return np.dtype(t).name
        return f"{np.dtype(t[0]).name}[{t[1][0]}]"

    return tuple(FieldDoc(n, kind(t), d, o) for n, t, o, d in fields)


def _fixed(
    type_id: int, name: str, doc: str, fields: tuple[FieldSpec, ...], size: int
) -> EventType:
    return EventType(
        type_id=type_id,
        name=name,
        version=1,
        codec=Codec.FIXED,
        doc=doc,
        fields=_docs(fields),
        dtype=fixed_dtype(fields, size),
    )


_LABEL_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    ("label", "i1", 2, "-1 (mid fell more than the threshold), 0 (within it), +1 (rose more)"),
    ("flags", "u1", 3, "bit set: 0x01 undefined (no two-sided mid at origin or horizon)"),
    ("ts_event", "<i8", 8, "event-time clock when the label matured, ns (UTC)"),
    ("cause", "<u8", 16, "journal offset of the first event past the horizon (maturity)"),
    ("origin", "<u8", 24, "cause of the labelled features.vector"),
    ("origin_ts", "<i8", 32, "ts_event of the labelled features.vector, ns (UTC)"),
    ("mid_start", "<f8", 40, "mid in effect at the origin, price units"),
    ("mid_end", "<f8", 48, "mid in effect at origin_ts + horizon, price units"),
    ("move", "<f8", 56, "log(mid_end / mid_start); NaN when undefined"),
)

LABEL = _fixed(
    12,
    "labels.label",
    "The realised direction of the mid over the horizon after one feature vector, emitted by the "
    "`labels` processor when it matures: at the first journal event whose time is past "
    "`origin_ts + horizon`, so a label never exists before its outcome is known.",
    _LABEL_FIELDS,
    64,
)

_PREDICTION_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    (
        "flags",
        "<u2",
        2,
        "bit set: 0x01 no CatBoost bundle, 0x02 online model cold, 0x04 no model, 0x08 in sample "
        "(the bundle in effect was trained on data up to this time)",
    ),
    ("direction", "i1", 4, "argmax of probs as -1/0/+1 (0 when no model)"),
    ("ts_event", "<i8", 8, "the feature vector's ts_event, ns (UTC)"),
    ("cause", "<u8", 16, "the feature vector's cause (journal offset)"),
    ("confidence", "<f8", 24, "probability of `direction` under probs"),
    ("probs", ("<f8", (3,)), 32, "the models' estimate (down, flat, up): meta if any, else online"),
    ("context", ("<f8", (3,)), 56, "context model (regime, volatility, session) probabilities"),
    ("micro", ("<f8", (3,)), 80, "microstructure model (order flow, book) probabilities"),
    ("meta", ("<f8", (3,)), 104, "meta-learner probabilities over context and micro"),
    ("online", ("<f8", (3,)), 128, "online (river) model probabilities"),
)

PREDICTION = _fixed(
    13,
    "model.prediction",
    "What the models say after one feature vector: the CatBoost context, microstructure and "
    "meta-learner probabilities and the online model's, as (down, flat, up). Emitted by the "
    "`models` processor; the bundle's content hashes are in the run manifest.",
    _PREDICTION_FIELDS,
    152,
)

_VOTES_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    (
        "votes",
        ("i1", (4,)),
        4,
        "vote of each agent (order_flow, liquidity, tape_reading, footprint)",
    ),
    ("ts_event", "<i8", 8, "the feature vector's ts_event, ns (UTC)"),
    ("cause", "<u8", 16, "the feature vector's cause (journal offset)"),
    ("confidence", ("<f8", (4,)), 24, "confidence of each agent's vote, 0..1"),
    ("reasons", ("<u4", (4,)), 56, "bit set per agent of the rules that fired (docs/agents.md)"),
)

VOTES = _fixed(
    14,
    "agents.votes",
    "The four agents' votes after one feature vector: a direction, a confidence and the rules "
    "that fired, as bits whose meaning docs/agents.md lists. Emitted by the `agents` processor.",
    _VOTES_FIELDS,
    72,
)

_DECISION_FIELDS: tuple[FieldSpec, ...] = (
    ("type_id", "<u2", 0, "catalogue type id"),
    ("flags", "<u2", 2, "bit set: 0x01 the feature vector was warming up"),
    ("direction", "i1", 4, "-1 sell, 0 stay flat, +1 buy"),
    ("votes", ("i1", (6,)), 5, "each contributor's direction (meta, online, four agents)"),
    ("ts_event", "<i8", 16, "the feature vector's ts_event, ns (UTC)"),
    ("cause", "<u8", 24, "the feature vector's cause (journal offset)"),
    ("confidence", "<f8", 32, "confidence of the decision, 0..1"),
    ("score", "<f8", 40, "weighted score in -1..1: sum of weight * vote * confidence"),
    ("model_score", "<f8", 48, "the models' part of score, normalised to -1..1"),
    ("agent_score", "<f8", 56, "the agents' part of score, normalised to -1..1"),
    ("weights", ("<f8", (6,)), 64, "each contributor's weight when deciding (sums to 1)"),
    ("confidences", ("<f8", (6,)), 112, "each contributor's confidence"),
)

DECISION = _fixed(
    15,
    "consensus.decision",
    "The consensus after one feature vector: direction and confidence with every contributing "
    "vote, confidence and weight (models 60 % / agents 40 % by default, adapted to realised "
    "accuracy as labels mature). Emitted by the `consensus` processor.",
    _DECISION_FIELDS,
    160,
)

DECISION_TYPES: tuple[EventType, ...] = (LABEL, PREDICTION, VOTES, DECISION)


def new_records(event_type: EventType, n: int) -> np.ndarray[Any, np.dtype[Any]]:
    """``n`` zeroed records of a fixed-width type with the type id filled in."""
    assert event_type.dtype is not None
    records = np.zeros(n, dtype=event_type.dtype)
    records["type_id"] = event_type.type_id
    return records
