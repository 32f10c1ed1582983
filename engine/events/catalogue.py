"""The event catalogue: every event type, looked up by id or name, and its canonical codec."""

from __future__ import annotations

from typing import Any, Union

import msgspec
import msgspec.inspect as mi
import numpy as np

from engine.events.book import BOOK_TYPES
from engine.events.control import CONTROL_STRUCTS
from engine.events.decisions import DECISION_TYPES
from engine.events.features import FEATURE_TYPES
from engine.events.market import MARKET_RECORD, MARKET_TYPES, RECORD_SIZE
from engine.events.models import MODELS_STRUCTS
from engine.events.trading import TRADING_FIXED_TYPES, TRADING_STRUCTS
from engine.events.types import Codec, EventType, FieldDoc

MSGPACK_FIRST_BYTES = frozenset([*range(0x90, 0xA0), 0xDC])
"""First bytes a msgpack-array event can start with (fixarray or array16)."""


class UnknownEventError(ValueError):
    """Bytes that are not the canonical encoding of any catalogue event."""


def _type_name(t: mi.Type) -> str:
    if isinstance(t, mi.Metadata):
        return _type_name(t.type)
    if isinstance(t, mi.StructType):
        return t.cls.__name__
    return type(t).__name__.removesuffix("Type").lower()


def struct_fields(cls: type[msgspec.Struct]) -> tuple[FieldDoc, ...]:
    """Field docs of a Struct, from the ``msgspec.Meta`` descriptions on its annotations."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    docs = []
    for f in info.fields:
        description = ""
        if isinstance(f.type, mi.Metadata):
            description = str((f.type.extra_json_schema or {}).get("description", ""))
        docs.append(FieldDoc(f.name, _type_name(f.type), description))
    return tuple(docs)


def _struct_type(name: str, cls: type[msgspec.Struct]) -> EventType:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, int)
    return EventType(
        type_id=tag,
        name=name,
        version=1,
        codec=Codec.MSGPACK,
        doc=(cls.__doc__ or "").strip(),
        fields=(
            FieldDoc("type_id", "int", "catalogue type id (the msgpack tag)"),
            *struct_fields(cls),
        ),
        struct=cls,
    )


FIXED_TYPES: tuple[EventType, ...] = (
    MARKET_TYPES + BOOK_TYPES + FEATURE_TYPES + DECISION_TYPES + TRADING_FIXED_TYPES
)
MSGPACK_STRUCTS = CONTROL_STRUCTS + TRADING_STRUCTS + MODELS_STRUCTS
CATALOGUE: tuple[EventType, ...] = FIXED_TYPES + tuple(
    _struct_type(name, cls) for name, cls in MSGPACK_STRUCTS
)

_BY_ID = {t.type_id: t for t in CATALOGUE}
_BY_NAME = {(t.name, t.version): t for t in CATALOGUE}
assert len(_BY_ID) == len(CATALOGUE), "duplicate type id in the catalogue"
assert len(_BY_NAME) == len(CATALOGUE), "duplicate name@version in the catalogue"
assert all(t.type_id < 0x80 for t in FIXED_TYPES), "fixed ids must stay below 128"

_ENCODER = msgspec.msgpack.Encoder(order="deterministic")
_STRUCTS = tuple(cls for _, cls in MSGPACK_STRUCTS)
_DECODER: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(Union[_STRUCTS])  # noqa: UP007


def by_id(type_id: int) -> EventType:
    """The catalogue entry with this type id."""
    try:
        return _BY_ID[type_id]
    except KeyError:
        raise UnknownEventError(f"no event type has id {type_id}") from None


def by_name(name: str, version: int | None = None) -> EventType:
    """The entry named ``name`` (``market.trade``), at ``version`` or the newest one."""
    if version is not None:
        try:
            return _BY_NAME[(name, version)]
        except KeyError:
            raise UnknownEventError(f"no event type {name}@{version}") from None
    matches = [t for t in CATALOGUE if t.name == name]
    if not matches:
        known = ", ".join(sorted({t.name for t in CATALOGUE}))
        raise UnknownEventError(f"no event type named {name!r}; known types: {known}")
    return max(matches, key=lambda t: t.version)


def is_msgpack(value: bytes | memoryview) -> bool:
    """Whether canonical bytes are a msgpack event (else they are a fixed-width record)."""
    return len(value) > 0 and value[0] in MSGPACK_FIRST_BYTES


def type_of_value(value: bytes) -> EventType:
    """The catalogue entry of canonical bytes, read from their type id without decoding."""
    if is_msgpack(value):
        return by_id(value[1])
    return by_id(int.from_bytes(value[:2], "little"))


def type_of(event: msgspec.Struct) -> EventType:
    """The catalogue entry of a low-rate event instance."""
    tag = type(event).__struct_config__.tag
    if not isinstance(tag, int):
        raise UnknownEventError(f"{type(event).__name__} is not a catalogue event")
    return by_id(tag)


def encode(event: msgspec.Struct) -> bytes:
    """The canonical bytes of a low-rate event."""
    return _ENCODER.encode(event)


def decode(value: bytes | memoryview) -> Any:
    """Decode canonical bytes: a Struct for msgpack events, a numpy record for fixed-width ones."""
    if not value:
        raise UnknownEventError("empty value")
    if is_msgpack(value):
        try:
            event = _DECODER.decode(value)
        except msgspec.DecodeError as exc:
            raise UnknownEventError(f"not a catalogue msgpack event: {exc}") from None
        if _ENCODER.encode(event) != value:
            raise UnknownEventError(
                f"not the canonical encoding of {type_of(event).qualified_name}: the same "
                "values encode to other bytes (a wider msgpack form)"
            )
        return event
    if len(value) != RECORD_SIZE:
        wide = _BY_ID.get(int.from_bytes(bytes(value[:2]), "little"))
        if wide is not None and wide.dtype is not None and wide.dtype.itemsize == len(value):
            return _fixed(value, wide)
        raise UnknownEventError(
            f"value of {len(value)} bytes starting 0x{value[0]:02x} is neither msgpack nor a "
            f"{RECORD_SIZE}-byte market record"
        )
    generic = np.frombuffer(value, dtype=MARKET_RECORD)[0]
    event_type = by_id(int(generic["type_id"]))
    if event_type.dtype is None or event_type.dtype.itemsize != len(value):
        raise UnknownEventError(
            f"{event_type.qualified_name} is not a {RECORD_SIZE}-byte fixed-width event"
        )
    return _fixed(value, event_type)


def _fixed(value: bytes | memoryview, event_type: EventType) -> Any:
    """The record of a fixed-width type; bytes no field covers must be zero (canonical)."""
    assert event_type.dtype is not None
    if np.frombuffer(value, dtype=np.uint8)[_UNUSED_BYTES[event_type.type_id]].any():
        raise UnknownEventError(
            f"not the canonical encoding of {event_type.qualified_name}: bytes outside its "
            "fields must be zero"
        )
    return np.frombuffer(value, dtype=event_type.dtype)[0]


def _unused_bytes(dtype: np.dtype[Any]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    unused = np.ones(dtype.itemsize, dtype=bool)
    for spec in (dtype.fields or {}).values():
        unused[spec[1] : spec[1] + spec[0].itemsize] = False
    return unused


_UNUSED_BYTES = {t.type_id: _unused_bytes(t.dtype) for t in CATALOGUE if t.dtype is not None}
"""Per market type, the bytes no field covers; canonical records have them zero."""


def to_dict(value: bytes | memoryview) -> dict[str, Any]:
    """A readable, JSON-ready dict of one event: ``type`` (name@version) then its fields."""
    event = decode(value)
    if isinstance(event, msgspec.Struct):
        return {"type": type_of(event).qualified_name, **_struct_dict(event)}
    event_type = by_id(int(event["type_id"]))
    assert event_type.dtype is not None
    out: dict[str, Any] = {"type": event_type.qualified_name}
    for name in event_type.dtype.names or ():
        if name != "type_id":
            field = event[name]
            out[name] = field.tolist() if isinstance(field, np.ndarray) else field.item()
    return out


def _struct_dict(event: msgspec.Struct) -> dict[str, Any]:
    # to_builtins would give lists: these structs are array_like on the wire.
    return {
        name: _struct_dict(v) if isinstance(v, msgspec.Struct) else v
        for name, v in msgspec.structs.asdict(event).items()
    }


def records_to_dicts(records: np.ndarray[Any, np.dtype[Any]]) -> list[dict[str, Any]]:
    """Readable dicts of a batch of fixed-width records (any mix of market types)."""
    raw = records.tobytes()
    return [to_dict(raw[i : i + RECORD_SIZE]) for i in range(0, len(raw), RECORD_SIZE)]
