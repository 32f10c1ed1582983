"""Walk-forward cards: one bundle per fold, all on one card, and the schedule they make.

``tape train SESSION --walk-forward`` cuts the labelled rows of one or more sessions into
consecutive test windows. Fold *k* is a bundle (a :class:`~engine.models.card.ModelCard` of
its own) fitted only on rows that matured before its test window, purged and embargoed, and
scored on that window: every fold's metrics are out of sample. The card lists the folds in
time order with their windows and metrics, and the metrics pooled over every fold's test rows.

Run with a walk-forward card as its bundle, the ``models`` stage follows the card's schedule:
fold *k*'s bundle takes effect at the journal offset of its test window's first vector
(``switch_offset`` in ``switch_session``), so a replay switches at exactly the same event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.models.card import (
    CardError,
    Metrics,
    Rows,
    SessionSource,
    converted,
    head_of,
    named,
)

SCHEDULE_FORMAT = "tapedeck.walk-forward"
SCHEDULE_VERSION = 1


class Fold(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One fold: its bundle, what it was fitted on, and its out-of-sample test window."""

    index: int
    """0-based, in time order."""
    bundle: str
    """Full sha256 of the fold's bundle in the model store."""
    train: Rows
    test: Rows
    switch_session: str
    """Session in whose journal the bundle takes effect (the test window's first session)."""
    switch_offset: int
    """Journal offset of the test window's first vector: the bundle is in effect from it."""
    switch_ts: int
    """Event time of that vector, ns (UTC)."""
    in_sample_until: int
    """The fold's training cut plus the embargo, ns (UTC); before ``switch_ts``."""
    metrics: dict[str, Metrics]
    """By role, on the test window (out of sample)."""


class WalkForwardCard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A walk-forward training: see the module docstring."""

    format: str = SCHEDULE_FORMAT
    version: int = SCHEDULE_VERSION
    scheme: str
    """``expanding`` (every earlier row) or ``rolling`` (only the last ``train_ns``)."""
    folds_requested: int
    """``--folds N`` (0 when windows were given as durations)."""
    train_ns: int
    """Rolling window length, or the first fold's minimum training span, ns (0: by folds)."""
    test_ns: int
    """Test window length, ns."""
    embargo_ns: int
    sessions: list[SessionSource]
    """Every session rows came from, oldest first."""
    labels: dict[str, Any]
    features: dict[str, Any]
    layers: str
    params: dict[str, Any]
    """The CatBoost settings every fold was trained with."""
    seed: int
    thread_count: int
    libraries: dict[str, str]
    folds: list[Fold]
    pooled: dict[str, Metrics]
    """By role: the metrics of every fold's test rows taken together (out of sample)."""

    def bundles(self) -> list[str]:
        """Each fold's bundle, in fold order."""
        return [fold.bundle for fold in self.folds]


def encode_schedule(card: WalkForwardCard) -> bytes:
    """Canonical bytes (JSON with sorted keys): what the card's hash is taken over."""
    return msgspec.json.encode(card, order="sorted")


def is_schedule(head: dict[str, Any]) -> bool:
    """Whether a decoded artifact is a walk-forward card."""
    return head.get("format") == SCHEDULE_FORMAT


def decode_schedule(raw: bytes, name: str = "") -> WalkForwardCard:
    """A walk-forward card from its bytes; :class:`CardError` if they are not one."""
    what = named(name)
    head = head_of(raw, what)
    if not is_schedule(head):
        raise CardError(f"{what}is not a walk-forward card")
    if head.get("version") != SCHEDULE_VERSION:
        raise CardError(
            f"{what}is a walk-forward card of version {head.get('version')}; this build reads "
            f"version {SCHEDULE_VERSION}"
        )
    card = converted(head, WalkForwardCard, what, "walk-forward card")
    if not card.folds:
        raise CardError(f"{what}is a walk-forward card without folds")
    return card
