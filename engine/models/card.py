"""Model cards: what a bundle of models is, what it was trained on, and how well it did.

A *bundle* is a model card stored in the model store like any artifact: canonical JSON (sorted
keys, no wall-clock fields), so its hash names it and two identical trainings give the same
name. The card names its member models by hash (roles ``context``, ``micro``, ``meta``) and
records the lineage (session, run, journal offsets of the training rows), the label and feature
definitions, the CatBoost parameters, seed and threads, library versions, and the metrics on a
time-ordered holdout the models never saw. See docs/models.md.
"""

from __future__ import annotations

from typing import Any

import msgspec

CARD_FORMAT = "tapedeck.model-bundle"
CARD_VERSION = 1
ROLES = ("context", "micro", "meta")
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
    """Journal offset behind the first row's feature vector."""
    last_origin: int
    last_maturity: int
    """Journal offset at which the last row's label matured."""
    first_ts: int
    """Event time of the first row's vector, ns (UTC)."""
    last_ts: int
    class_counts: dict[str, int]


class TrainingData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the training rows came from and how they were split."""

    session: str
    run_id: str
    """The ``labels`` pipeline run whose features and labels were joined."""
    journal_topic: str
    journal_start: int
    journal_stop: int
    """The run's journal range (the rows used are within it; see ``train``/``holdout``)."""
    until: str
    """``--until`` as given, and the cut it meant: labels matured at or before it."""
    until_ts: int
    feature_schema: int
    features: dict[str, Any]
    """The ``features`` stage settings of the run (cadence, L1 source, calendar)."""
    labels: dict[str, Any]
    """The ``labels`` stage settings (horizon_ms, threshold_bp)."""
    holdout_fraction: float
    embargo_ns: int
    train: Rows
    holdout: Rows


class ModelCard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A bundle: see the module docstring."""

    format: str = CARD_FORMAT
    version: int = CARD_VERSION
    models: dict[str, Member]
    """By role: context, micro, meta."""
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


class CardError(ValueError):
    """Bytes that are not a model card this build reads."""


def encode_card(card: ModelCard) -> bytes:
    """The card's canonical bytes: JSON with sorted keys (what its hash is taken over)."""
    return msgspec.json.encode(card, order="sorted")


def decode_card(raw: bytes, name: str = "") -> ModelCard:
    """A card from its bytes; :class:`CardError` if they are not one."""
    what = f"artifact {name[:16]} " if name else ""
    try:
        head = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise CardError(f"{what}is not a model bundle (not JSON)") from None
    if not isinstance(head, dict) or head.get("format") != CARD_FORMAT:
        raise CardError(
            f"{what}is not a model bundle (a single model, or another file?); give the bundle "
            "hash that `tape train` printed"
        )
    if head.get("version") != CARD_VERSION:
        raise CardError(
            f"{what}is a bundle of version {head.get('version')}; this build reads version "
            f"{CARD_VERSION}"
        )
    try:
        card = msgspec.json.decode(raw, type=ModelCard)
    except msgspec.ValidationError as exc:
        raise CardError(f"{what}is a malformed model bundle: {exc}") from None
    if set(card.models) != set(ROLES):
        raise CardError(f"{what}names roles {sorted(card.models)}; a bundle needs {ROLES}")
    return card
