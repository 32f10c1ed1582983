"""The event catalogue: stable names, versions and one canonical encoding per event type."""

from engine.events.catalogue import (
    CATALOGUE,
    UnknownEventError,
    by_id,
    by_name,
    decode,
    encode,
    to_dict,
    type_of,
)
from engine.events.types import Codec, EventType, FieldDoc

__all__ = [
    "CATALOGUE",
    "Codec",
    "EventType",
    "FieldDoc",
    "UnknownEventError",
    "by_id",
    "by_name",
    "decode",
    "encode",
    "to_dict",
    "type_of",
]
