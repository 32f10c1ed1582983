"""What every catalogue entry is: a stable name, an integer version, a type id and one codec.

The type id is part of the canonical bytes of every event, so a value read from any log is
self-describing. Fixed-width records start with the id as a little-endian ``uint16`` below 128;
msgpack events are msgpack arrays whose first byte is ``0x90``-``0x9f`` or ``0xdc``. The first
byte alone therefore tells the codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec
import numpy as np

FieldSpec = tuple[str, Any, int, str]
"""(name, numpy format, byte offset, description) of one fixed-width field."""


def fixed_dtype(fields: tuple[FieldSpec, ...], itemsize: int) -> np.dtype[Any]:
    """The little-endian structured dtype of fixed-width fields at explicit offsets."""
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    )


class Codec(StrEnum):
    """How an event type is turned into its canonical bytes."""

    FIXED = "fixed"
    """A fixed-width little-endian record described by a numpy dtype."""
    MSGPACK = "msgpack"
    """A msgspec Struct encoded as a msgpack array (``array_like``), tagged by its type id."""


@dataclass(frozen=True)
class FieldDoc:
    """One field of an event type as the catalogue documents it."""

    name: str
    type: str
    description: str
    offset: int | None = None
    """Byte offset inside a fixed-width record; ``None`` for msgpack fields."""


@dataclass(frozen=True)
class EventType:
    """A catalogue entry.

    ``name`` and ``version`` are what users and docs see (``market.trade`` v1); ``type_id`` is
    what the bytes carry. Neither ever changes meaning: a new layout is a new version with a new
    type id and an upcaster from the old one.
    """

    type_id: int
    name: str
    version: int
    codec: Codec
    doc: str
    fields: tuple[FieldDoc, ...]
    dtype: np.dtype[Any] | None = None
    struct: type[msgspec.Struct] | None = None

    @property
    def qualified_name(self) -> str:
        """``name@version``, the form used in topic metadata and headers."""
        return f"{self.name}@{self.version}"
