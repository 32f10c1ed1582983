"""Model lifecycle events derived by the ``models`` processor.

``model.switched`` marks the journal offset from which a bundle is in effect: the run's
configured bundle (at the run's first event), each fold boundary of a walk-forward schedule,
and each ``model.promoted`` control event. With the predictions' ``P_IN_SAMPLE`` flag it tells
a reader which model made every prediction and whether that model had seen the period
(docs/models.md). Low rate: a msgspec Struct encoded as a msgpack array tagged by its type id,
like :mod:`engine.events.trading`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class ModelSwitched(
    msgspec.Struct, tag=66, frozen=True, array_like=True, forbid_unknown_fields=True
):
    """A bundle took effect in the ``models`` processor: every prediction caused at or after
    ``cause`` (until the next switch) comes from it."""

    ts_event: Annotated[int, _doc("event-time clock when it took effect, ns (UTC)")]
    cause: Annotated[int, _doc("journal offset from which the bundle is in effect")]
    bundle: Annotated[str, _doc("full sha256 of the bundle in effect; empty: none (online only)")]
    source: Annotated[
        str, _doc("config (the run's bundle), schedule (a walk-forward fold) or promotion")
    ]
    fold: Annotated[int, _doc("walk-forward fold index (0-based); -1 when not from a schedule")]
    in_sample_until: Annotated[
        int,
        _doc(
            "vectors at or before this event time are in sample for the bundle: its training "
            "cut plus the embargo, ns (UTC); 0 when there is no bundle"
        ),
    ]


MODELS_STRUCTS: tuple[tuple[str, type[msgspec.Struct]], ...] = (("model.switched", ModelSwitched),)
"""(stable name, struct) of every models msgpack type; the tag is its type id."""
