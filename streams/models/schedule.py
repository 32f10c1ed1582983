"""Which bundle the ``models`` stage evaluates at each journal offset, and when that changes.

The run's configured bundle is in effect from the start. A walk-forward card instead plans a
switch at each fold's first test vector (``Fold.switch_offset`` in this session); before the
first of them, the earliest applicable fold's bundle is in effect (in sample there). A
``model.promoted`` control event in the journal replaces whatever is in effect, and whatever
was still planned, with the promoted bundle (or, for a promoted walk-forward card, with its
plan from that offset on). Every change is announced as a ``model.switched`` event whose
cause is the offset it takes effect at, so a replay switches at exactly the same event.

Switch offsets are journal offsets, never times, so the result does not depend on how the
journal is sliced: a switch planned at offset ``o`` takes effect in the slice holding ``o``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from engine.events.models import ModelSwitched
from engine.models import Card, CardError, ModelCard, WalkForwardCard, decode_any
from engine.runtime.topology import ConfigError
from streams.models.ensemble import BundleError, Ensemble
from streams.models.trees import ModelFormatError

START = -1
"""Offset of a plan's first entry: in effect from the run's first event."""


class Entry(msgspec.Struct, frozen=True, array_like=True):
    """A bundle in effect from journal offset ``offset`` on."""

    offset: int
    bundle: str
    source: str
    """``config``, ``schedule`` or ``promotion``."""
    fold: int
    """Walk-forward fold index, -1 when not a fold's own window."""


def plan(card: Card, ref: str, session: str, source: str) -> list[Entry]:
    """The entries a bundle (or walk-forward card) ``ref`` makes in ``session``, oldest first.

    A plain bundle is one entry. A walk-forward card starts with the bundle of the last fold
    whose window lies in an earlier session of the card (none: fold 0's, before its window:
    fold -1), then switches at each of its folds' windows in this session. For a session the
    card does not name, its last fold is in effect throughout.
    """
    if isinstance(card, ModelCard):
        return [Entry(START, ref, source, -1)]
    names = [s.session for s in card.sessions]
    if session not in names:
        last = card.folds[-1]
        return [Entry(START, last.bundle, source, last.index)]
    here = names.index(session)
    earlier = [f for f in card.folds if names.index(f.switch_session) < here]
    first = earlier[-1] if earlier else card.folds[0]
    return [Entry(START, first.bundle, source, first.index if earlier else -1)] + [
        Entry(fold.switch_offset, fold.bundle, "schedule", fold.index)
        for fold in card.folds
        if fold.switch_session == session
    ]


@dataclass
class InEffect:
    """The bundle in effect: its evaluator (None: no bundle) and where its sample ends."""

    entry: Entry
    ensemble: Ensemble | None
    in_sample_until: int
    """Vectors before this event time are in sample for the bundle (0: no bundle)."""


class Schedule:
    """The plan of one run and the bundle in effect (see the module docstring)."""

    def __init__(self, session: str, fetch: Callable[[str], bytes], bundle: str) -> None:
        self.session, self.fetch = session, fetch
        self._ensembles: dict[str, Ensemble] = {}
        self.entries = plan(self._card(bundle), bundle, session, "config") if bundle else []
        self.entries = self.entries or [Entry(START, "", "config", -1)]
        self.announced = 0
        """Entries already announced (switched to)."""
        self.current = self._in_effect(self.entries[0])

    def _card(self, ref: str) -> Card:
        try:
            return decode_any(self.fetch(ref), ref)
        except CardError as exc:
            raise ConfigError(f"stage 'models': bundle {ref[:16]}: {exc}") from None

    def _in_effect(self, entry: Entry) -> InEffect:
        if not entry.bundle:
            return InEffect(entry, None, 0)
        if entry.bundle not in self._ensembles:
            card = self._card(entry.bundle)
            if isinstance(card, WalkForwardCard):
                raise ConfigError(
                    f"stage 'models': walk-forward card {entry.bundle[:16]} names another "
                    "walk-forward card as a fold's bundle"
                )
            try:
                self._ensembles[entry.bundle] = Ensemble(card, self.fetch)
            except (BundleError, ModelFormatError) as exc:
                raise ConfigError(f"stage 'models': bundle {entry.bundle[:16]}: {exc}") from None
        ensemble = self._ensembles[entry.bundle]
        return InEffect(entry, ensemble, ensemble.card.data.in_sample_until)

    def due(self, stop: int) -> list[Entry]:
        """Planned entries not yet in effect that take effect before offset ``stop``."""
        return [e for e in self.entries[self.announced :] if e.offset < stop]

    def switch(self, entry: Entry, offset: int, ts: int) -> ModelSwitched:
        """Put ``entry`` in effect at journal offset ``offset``; the event that says so."""
        self.current = self._in_effect(entry)
        self.announced += 1
        return ModelSwitched(
            ts, offset, entry.bundle, entry.source, entry.fold, self.current.in_sample_until
        )

    def promote(self, bundle: str, offset: int) -> Entry:
        """Replace the plan from ``offset`` on with ``bundle``'s; the entry in effect there."""
        entries = plan(self._card(bundle), bundle, self.session, "promotion")
        now = msgspec.structs.replace(
            [e for e in entries if e.offset <= offset][-1], offset=offset, source="promotion"
        )
        later = [e for e in entries if e.offset > offset]
        self.entries = [*self.entries[: self.announced], now, *later]
        return now

    def state(self) -> tuple[list[Entry], int]:
        """What a snapshot keeps: the plan and how much of it is in effect."""
        return list(self.entries), self.announced

    def restore(self, entries: list[Entry], announced: int) -> None:
        """Continue from :meth:`state` (the bundle in effect is rebuilt from the store)."""
        self.entries, self.announced = entries, announced
        self.current = self._in_effect(entries[max(0, announced - 1)])
