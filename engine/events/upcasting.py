"""Reading older layouts: upcasters bring an event of an older version up to the current one.

A new layout of an event type is a new version with a new type id; the old entry stays in the
catalogue, so bytes written with it still decode as what they are. An :class:`Upcaster` is a
small pure function from version ``v`` of a type to version ``v + 1``; chained, they bring
any stored version to the current one. What is stored is never rewritten: the journal and the
hash chains keep the bytes as they were written, and replay feeds processors the upcast
events, so a processor only ever knows the current layout. docs/architecture.md ("Adding a
version of an event") walks through one, with its test on a frozen sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from engine.events.types import Codec, EventType

if TYPE_CHECKING:
    from engine.events.catalogue import Catalogue


@dataclass(frozen=True)
class Upcaster:
    """Turns ``name`` events of ``version`` into events of ``version + 1``.

    For a low-rate type ``apply`` takes and returns one Struct; for a fixed-width type it takes
    the records of the old dtype (an array) and returns as many of the new one, in order. It is
    pure: the same input always gives the same output, so a replay upcasts exactly alike.
    """

    name: str
    version: int
    apply: Callable[[Any], Any]


class Upcasting:
    """The upcasters of a catalogue, checked against it and chained by type id."""

    def __init__(self, catalogue: Catalogue, upcasters: tuple[Upcaster, ...]) -> None:
        self._catalogue = catalogue
        self._steps: dict[int, tuple[Upcaster, EventType]] = {}
        for upcaster in upcasters:
            source = catalogue.by_name(upcaster.name, upcaster.version)
            target = catalogue.by_name(upcaster.name, upcaster.version + 1)
            _check_compatible(source, target)
            if source.type_id in self._steps:
                raise ValueError(f"two upcasters from {source.qualified_name}")
            self._steps[source.type_id] = (upcaster, target)
        self._fixed_sources = np.array(
            sorted(i for i, (_, t) in self._steps.items() if t.codec is Codec.FIXED), np.uint16
        )

    def current(self, event: Any) -> Any:
        """``event`` (a Struct or one fixed-width record) at the current version of its type."""
        if not self._steps:
            return event
        if isinstance(event, msgspec.Struct):
            type_id = self._catalogue.type_of(event).type_id
            while type_id in self._steps:
                upcaster, target = self._steps[type_id]
                event, type_id = upcaster.apply(event), target.type_id
            return event
        return self.current_records(np.asarray(event).reshape(1))[0]

    def current_records(self, records: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Fixed-width records (any mix of types, one itemsize) with every old version upcast;
        ``records`` itself when none is old (the usual case, checked in one pass)."""
        if not len(self._fixed_sources):
            return records
        raw = records.view(np.uint8).reshape(len(records), -1)
        ids = _type_ids(raw)
        old = np.isin(ids, self._fixed_sources)
        if not old.any():
            return records
        out = raw.copy()
        while old.any():
            # each pass lifts every old record by one version, until none is old
            for source_id in np.unique(ids[old]).tolist():
                rows = np.flatnonzero(ids == source_id)
                out[rows] = self._lifted(source_id, out[rows])
            ids = _type_ids(out)
            old = np.isin(ids, self._fixed_sources)
        lifted: np.ndarray[Any, Any] = out.view(records.dtype).ravel()
        return lifted

    def _lifted(self, source_id: int, raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Rows (as bytes) of type ``source_id``, upcast one version, as bytes again."""
        upcaster, target = self._steps[source_id]
        source = self._catalogue.by_id(source_id)
        assert source.dtype is not None
        assert target.dtype is not None
        new = np.asarray(upcaster.apply(np.ascontiguousarray(raw).view(source.dtype).ravel()))
        if new.dtype != target.dtype or len(new) != len(raw):
            raise ValueError(
                f"upcaster {upcaster.name} v{upcaster.version} must return {len(raw)} records "
                f"of {target.qualified_name}'s dtype"
            )
        return new.view(np.uint8).reshape(len(raw), -1)


def _type_ids(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The little-endian uint16 type id leading each fixed-width record (rows of bytes)."""
    return raw[:, :2].copy().view("<u2").ravel()


def _check_compatible(source: EventType, target: EventType) -> None:
    """An upcaster must keep the codec, and a fixed-width record its size (a journal's frame)."""
    if source.codec is not target.codec:
        raise ValueError(f"{source.qualified_name} -> {target.qualified_name} changes the codec")
    if (
        source.dtype is not None
        and target.dtype is not None
        and source.dtype.itemsize != target.dtype.itemsize
    ):
        raise ValueError(
            f"{source.qualified_name} -> {target.qualified_name} changes the record size "
            f"({source.dtype.itemsize} -> {target.dtype.itemsize} bytes)"
        )
