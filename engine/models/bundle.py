"""Bundles by hash: reading a bundle's card (or a walk-forward card) from a model source, and
what a run records.

A run names its bundle in its config (``stages.models.bundle``, a full hash): a single bundle,
or a walk-forward card whose folds' bundles take effect in turn. Its manifest's ``models``
field lists every artifact that config needs (the bundle, and each fold's bundle and member
models by role), so the exact artifacts a run used can be found (and copied) from the
manifest alone. Bundles promoted during the run are in its ``switches`` topic.
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.models.card import CardError, ModelCard, decode_card, head_of, named
from engine.models.store import ModelStoreError
from engine.models.walkforward import WalkForwardCard, decode_schedule, is_schedule

Card = ModelCard | WalkForwardCard
"""What a bundle hash can name."""


class ModelSource(Protocol):
    """Anything that gives an artifact's verified bytes by hash (a :class:`ModelStore`)."""

    def get(self, ref: str) -> bytes:
        """The bytes of artifact ``ref``, verified against its hash."""
        ...


def decode_any(raw: bytes, name: str = "") -> Card:
    """A bundle card or a walk-forward card from its bytes; :class:`CardError` otherwise."""
    if is_schedule(head_of(raw, named(name))):
        return decode_schedule(raw, name)
    return decode_card(raw, name)


def load_card(source: ModelSource, ref: str) -> ModelCard:
    """The card of bundle ``ref``; :class:`ModelStoreError` if it is missing or not a bundle."""
    try:
        return decode_card(source.get(ref), ref)
    except CardError as exc:
        raise ModelStoreError(str(exc)) from None


def load_any(source: ModelSource, ref: str) -> Card:
    """The bundle or walk-forward card ``ref`` names; :class:`ModelStoreError` otherwise."""
    try:
        return decode_any(source.get(ref), ref)
    except CardError as exc:
        raise ModelStoreError(str(exc)) from None


def configured_bundles(resolved: dict[str, Any]) -> dict[str, str]:
    """Stage id -> bundle hash, for every stage of a resolved run config that names one."""
    stages: dict[str, dict[str, Any]] = resolved.get("stages", {})
    return {
        stage: str(settings["bundle"])
        for stage, settings in stages.items()
        if isinstance(settings.get("bundle"), str) and settings["bundle"]
    }


def artifacts(source: ModelSource, ref: str) -> dict[str, str]:
    """Every artifact bundle ``ref`` needs, by name: ``bundle`` and each role's hash; for a
    walk-forward card also ``fold<k>.bundle`` and ``fold<k>.<role>`` of each fold."""
    card = load_any(source, ref)
    out = {"bundle": ref}
    if isinstance(card, WalkForwardCard):
        for fold in card.folds:
            for name, digest in artifacts(source, fold.bundle).items():
                out[f"fold{fold.index}.{name}"] = digest
        return out
    out.update(card.hashes())
    return out


def run_models(resolved: dict[str, Any], source: ModelSource) -> dict[str, str]:
    """What a run's manifest records: :func:`artifacts` of its configured bundle.

    With more than one stage naming a bundle, keys are prefixed ``<stage>.``.
    """
    bundles = configured_bundles(resolved)
    out: dict[str, str] = {}
    for stage, bundle in bundles.items():
        prefix = "" if len(bundles) == 1 else f"{stage}."
        out.update({f"{prefix}{k}": v for k, v in artifacts(source, bundle).items()})
    return out
