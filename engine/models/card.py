"""Model cards: what a bundle of models is, what it was trained on, and how well it did.

A *bundle* is a model card stored in the model store like any artifact: canonical JSON (sorted
keys, no wall-clock fields), so its hash names it and two identical trainings give the same
name. The card names its member models by hash (``meta``, whose probabilities the pipeline
acts on, and, in a stacked design, the base models under it such as ``context`` and ``micro``)
and records the lineage (sessions, runs, journal offsets of
the training rows), the label and feature definitions, the CatBoost parameters, seed and
threads, library versions, and the metrics on a time-ordered holdout the models never saw.

Its time windows are explicit, for people and for the pipeline: ``data.train`` and
``data.holdout`` (first / last vector time and offsets of each), and ``data.in_sample_until``,
the training cut plus the embargo: a prediction for a vector at or before that time is in
sample (the ``models`` stage flags it, and trading reports keep it apart). See docs/models.md.

Version 2 added ``sessions``, ``in_sample_until``, the rows' sessions and the log-loss
baseline; :func:`upcast_v1_v2` reads version 1 cards.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

CARD_FORMAT = "tapedeck.model-bundle"
CARD_VERSION = 2
META = "meta"
ROLES = ("context", "micro", META)
"""The roles of a bundle of the ``two`` design (``tape train --layers two``); a ``merged``
bundle has ``meta`` alone, a ``five`` bundle five base roles and ``meta``."""
CLASS_NAMES = ("down", "flat", "up")
"""Classes in the order of every probability triple (labels -1, 0, +1)."""


class ClassScores(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One class on the holdout."""

    count: int
    """Holdout rows whose label is this class."""
    predicted: int
    """Holdout rows the model assigned to this class (argmax)."""
    precision: float | None
    """Of the rows predicted as this class, the share that were (None: none predicted)."""
    recall: float | None
    """Of the rows of this class, the share predicted as it (None: none in the holdout)."""


class Metrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's out-of-sample scores on the holdout."""

    rows: int
    accuracy: float
    log_loss: float
    """Mean negative log probability of the true class (natural log)."""
    baseline_class: int
    """The majority class of the training labels (-1, 0, +1): the baseline's constant guess."""
    baseline_accuracy: float
    """Accuracy of always guessing ``baseline_class`` on the holdout."""
    classes: dict[str, ClassScores]
    """Per class (down, flat, up)."""
    baseline_log_loss: float | None = None
    """Log loss of always predicting the training labels' class frequencies (None: a version 1
    card, which did not record it)."""


class Member(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One model of the bundle."""

    hash: str
    """sha256 of its CatBoost JSON in the model store."""
    columns: list[str]
    """Its inputs in order: feature names, or ``<role>.<class>`` for another model's output."""
    params: dict[str, Any]
    """The CatBoost parameters it was trained with."""


class Rows(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A span of labelled rows, by journal offset and event time."""

    rows: int
    first_origin: int
    """Journal offset (in ``first_session``) behind the first row's feature vector."""
    last_origin: int
    """Journal offset (in ``last_session``) behind the last row's feature vector."""
    last_maturity: int
    """Journal offset (in ``last_session``) at which the last row's label matured."""
    first_ts: int
    """Event time of the first row's vector, ns (UTC)."""
    last_ts: int
    """Event time of the last row's vector, ns (UTC)."""
    class_counts: dict[str, int]
    first_session: str = ""
    last_session: str = ""


class SessionSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One session labelled rows came from: the ``labels`` run over it and its time span."""

    session: str
    run_id: str
    journal_topic: str
    journal_start: int
    journal_stop: int
    first_ts: int
    """First market event time of the session, ns (UTC)."""
    last_ts: int


class TrainingData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the training rows came from and how they were split."""

    session: str
    """The session of the holdout (the last one trained on)."""
    run_id: str
    """The ``labels`` pipeline run whose features and labels were joined."""
    journal_topic: str
    journal_start: int
    journal_stop: int
    """The run's journal range (the rows used are within it; see ``train``/``holdout``)."""
    until: str
    """``--until`` as given (or the walk-forward fold), and the cut it meant."""
    until_ts: int
    """The training cut: no row trained on matured after it, ns (UTC)."""
    feature_schema: int
    features: dict[str, Any]
    """The ``features`` stage settings of the run (cadence, L1 source, calendar)."""
    labels: dict[str, Any]
    """The ``labels`` stage settings (horizon_ms, threshold_bp)."""
    holdout_fraction: float
    embargo_ns: int
    train: Rows
    holdout: Rows
    in_sample_until: int = 0
    """``until_ts + embargo_ns``: vectors at or before this time are in sample for the bundle."""
    sessions: list[SessionSource] = []
    """Every session rows came from, oldest first (one for ``tape train SESSION``)."""


class ModelCard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A bundle: see the module docstring."""

    format: str = CARD_FORMAT
    version: int = CARD_VERSION
    models: dict[str, Member]
    """By role: the base models, then ``meta``."""
    data: TrainingData
    meta_scheme: str
    """How the meta-learner's training inputs were produced (out-of-fold, in time order)."""
    seed: int
    thread_count: int
    libraries: dict[str, str]
    metrics: dict[str, Metrics]
    """Holdout metrics by role."""

    def hashes(self) -> dict[str, str]:
        """Each member model's hash, by role."""
        return {role: member.hash for role, member in self.models.items()}

    def bases(self) -> list[str]:
        """The base roles (every role but ``meta``), in the card's order."""
        return [role for role in self.models if role != META]


class CardError(ValueError):
    """Bytes that are not a model card this build reads."""


def encode_card(card: ModelCard) -> bytes:
    """The card's canonical bytes: JSON with sorted keys (what its hash is taken over)."""
    return msgspec.json.encode(card, order="sorted")


def upcast_v1_v2(card: dict[str, Any]) -> dict[str, Any]:
    """A version 1 card as version 2: one session, ``in_sample_until`` from its cut and embargo."""
    data = dict(card["data"])
    session = data["session"]
    data["in_sample_until"] = int(data["until_ts"]) + int(data["embargo_ns"])
    for part in ("train", "holdout"):
        data[part] = {**data[part], "first_session": session, "last_session": session}
    data["sessions"] = []
    return {**card, "version": 2, "data": data}


def named(name: str) -> str:
    """How an error names an artifact: ``artifact 3fa9... `` (empty without a name)."""
    return f"artifact {name[:16]} " if name else ""


CardT = TypeVar("CardT", bound=msgspec.Struct)


def converted(head: dict[str, Any], kind: type[CardT], what: str, label: str) -> CardT:
    """``head`` as a ``kind``; :class:`CardError` naming the ``label`` if it is malformed."""
    try:
        return msgspec.convert(head, type=kind)
    except msgspec.ValidationError as exc:
        raise CardError(f"{what}is a malformed {label}: {exc}") from None


def head_of(raw: bytes, what: str) -> dict[str, Any]:
    """The decoded JSON object of an artifact, or :class:`CardError` if it is not one."""
    try:
        head = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise CardError(f"{what}is not a model bundle (not JSON)") from None
    if not isinstance(head, dict):
        raise CardError(f"{what}is not a model bundle (a single model, or another file?)")
    return head


def decode_card(raw: bytes, name: str = "") -> ModelCard:
    """A card from its bytes; :class:`CardError` if they are not one."""
    what = named(name)
    head = head_of(raw, what)
    if head.get("format") != CARD_FORMAT:
        raise CardError(
            f"{what}is not a model bundle (a single model, or another file?); give the bundle "
            "hash that `tape train` printed"
        )
    if head.get("version") == 1:
        head = upcast_v1_v2(head)
    elif head.get("version") != CARD_VERSION:
        raise CardError(
            f"{what}is a bundle of version {head.get('version')}; this build reads versions 1 "
            f"and {CARD_VERSION}"
        )
    card = converted(head, ModelCard, what, "model bundle")
    if META not in card.models:
        raise CardError(f"{what}names roles {sorted(card.models)}; a bundle needs {META!r}")
    return card
