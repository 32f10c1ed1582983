"""Bundles by hash: reading a bundle's card from a model source, and what a run records.

A run names its bundle in its config (``stages.models.bundle``, a full hash); its manifest's
``models`` field lists the bundle and each member model by role, so the exact artifacts a run
used can be found (and copied) from the manifest alone.
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.models.card import CardError, ModelCard, decode_card
from engine.models.store import ModelStoreError


class ModelSource(Protocol):
    """Anything that gives an artifact's verified bytes by hash (a :class:`ModelStore`)."""

    def get(self, ref: str) -> bytes:
        """The bytes of artifact ``ref``, verified against its hash."""
        ...


def load_card(source: ModelSource, ref: str) -> ModelCard:
    """The card of bundle ``ref``; :class:`ModelStoreError` if it is missing or not a bundle."""
    raw = source.get(ref)
    try:
        return decode_card(raw, ref)
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


def run_models(resolved: dict[str, Any], source: ModelSource) -> dict[str, str]:
    """What a run's manifest records: ``bundle`` and each member's hash by role.

    With more than one stage naming a bundle, keys are prefixed ``<stage>.``.
    """
    bundles = configured_bundles(resolved)
    out: dict[str, str] = {}
    for stage, bundle in bundles.items():
        prefix = "" if len(bundles) == 1 else f"{stage}."
        out[f"{prefix}bundle"] = bundle
        for role, digest in load_card(source, bundle).hashes().items():
            out[f"{prefix}{role}"] = digest
    return out
