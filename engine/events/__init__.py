"""The event catalogue: stable names, versions and one canonical encoding per event type."""

from engine.events.catalogue import (
    CATALOGUE,
    EVENTS,
    Catalogue,
    UnknownEventError,
    by_id,
    by_name,
    current,
    decode,
    encode,
    to_dict,
    type_of,
)
from engine.events.types import Codec, EventType, FieldDoc
from engine.events.upcasting import Upcaster

__all__ = [
    "CATALOGUE",
    "EVENTS",
    "Catalogue",
    "Codec",
    "EventType",
    "FieldDoc",
    "UnknownEventError",
    "Upcaster",
    "by_id",
    "by_name",
    "current",
    "decode",
    "encode",
    "to_dict",
    "type_of",
]
