"""The event catalogue: every event type, looked up by id or name, and its canonical codec."""

from __future__ import annotations

from typing import Any, Union

import msgspec
import msgspec.inspect as mi
import numpy as np

from engine.events.book import BOOK_TYPES
from engine.events.broker import BROKER_STRUCTS
from engine.events.control import CONTROL_STRUCTS
from engine.events.decisions import DECISION_TYPES
from engine.events.features import FEATURE_TYPES
from engine.events.market import MARKET_RECORD, MARKET_TYPES, RECORD_SIZE
from engine.events.models import MODELS_STRUCTS
from engine.events.trading import TRADING_FIXED_TYPES, TRADING_STRUCTS
from engine.events.types import Codec, EventType, FieldDoc
from engine.events.upcasting import Upcaster, Upcasting

MSGPACK_FIRST_BYTES = frozenset([*range(0x90, 0xA0), 0xDC])
"""First bytes a msgpack-array event can start with (fixarray or array16)."""


ID_RANGES = {
    (1, 59): "fixed-width types: market records and derived fixed-width outputs",
    (60, 63): "fixed-width, reserved for tests and docs examples",
    (64, 79): "msgpack: model lifecycle",
    (80, 89): "msgpack: feeds and sessions",
    (90, 99): "msgpack: broker responses",
    (100, 109): "msgpack: sessions, clock, operator commands, quarantine, feed gaps",
    (110, 119): "msgpack: risk, orders, executions",
    (120, 123): "msgpack: free",
    (124, 127): "msgpack, reserved for tests and docs examples",
}
"""How the one id space (1..127, a byte in every encoding) is shared out. One id space for both
codecs: the first byte tells the codec, the id says the type."""


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


def struct_type(name: str, cls: type[msgspec.Struct]) -> EventType:
    """The catalogue entry of a low-rate event struct: its tag is the type id, its ``VERSION``
    class attribute the version (1 when it has none)."""
    tag = cls.__struct_config__.tag
    assert isinstance(tag, int)
    return EventType(
        type_id=tag,
        name=name,
        version=int(getattr(cls, "VERSION", 1)),
        codec=Codec.MSGPACK,
        doc=(cls.__doc__ or "").strip(),
        fields=(
            FieldDoc("type_id", "int", "catalogue type id (the msgpack tag)"),
            *struct_fields(cls),
        ),
        struct=cls,
    )


class Catalogue:
    """Event types by id and by name, their canonical codec, and the upcasters that bring an
    older version of a type up to its current one (:mod:`engine.events.upcasting`).

    One instance, :data:`EVENTS`, is what Tapedeck reads and writes with; the module-level
    functions below are its methods. A test can build its own to try a new version out.
    """

    def __init__(self, types: tuple[EventType, ...], upcasters: tuple[Upcaster, ...] = ()) -> None:
        self.types = types
        self._by_id = {t.type_id: t for t in types}
        self._by_name = {(t.name, t.version): t for t in types}
        if len(self._by_id) != len(types):
            raise ValueError("duplicate type id in the catalogue")
        if len(self._by_name) != len(types):
            raise ValueError("duplicate name@version in the catalogue")
        if any(not 0 < t.type_id < 0x80 for t in types):
            # a fixed record's id is its first byte; a msgpack event's tag must be a one-byte
            # fixint so that byte 1 of its bytes is the id (type_of_value reads it there)
            raise ValueError("type ids must lie in 1..127 (see ID_RANGES)")
        structs = tuple(t.struct for t in types if t.struct is not None)
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(
            Union[structs]  # noqa: UP007
        )
        self._unused = {t.type_id: _unused_bytes(t.dtype) for t in types if t.dtype is not None}
        self.upcasting = Upcasting(self, upcasters)

    def by_id(self, type_id: int) -> EventType:
        """The entry with this type id."""
        try:
            return self._by_id[type_id]
        except KeyError:
            raise UnknownEventError(f"no event type has id {type_id}") from None

    def by_name(self, name: str, version: int | None = None) -> EventType:
        """The entry named ``name`` (``market.trade``), at ``version`` or the newest one."""
        if version is not None:
            try:
                return self._by_name[(name, version)]
            except KeyError:
                raise UnknownEventError(f"no event type {name}@{version}") from None
        matches = [t for t in self.types if t.name == name]
        if not matches:
            known = ", ".join(sorted({t.name for t in self.types}))
            raise UnknownEventError(f"no event type named {name!r}; known types: {known}")
        return max(matches, key=lambda t: t.version)

    def type_of_value(self, value: bytes) -> EventType:
        """The entry of canonical bytes, read from their type id without decoding."""
        if is_msgpack(value):
            return self.by_id(value[1])
        return self.by_id(int.from_bytes(value[:2], "little"))

    def type_of(self, event: msgspec.Struct) -> EventType:
        """The entry of a low-rate event instance."""
        tag = type(event).__struct_config__.tag
        if not isinstance(tag, int):
            raise UnknownEventError(f"{type(event).__name__} is not a catalogue event")
        return self.by_id(tag)

    def decode(self, value: bytes | memoryview) -> Any:
        """Decode canonical bytes as stored: a Struct for msgpack events, a numpy record for
        fixed-width ones (an older version stays that version: see :meth:`current`)."""
        if not value:
            raise UnknownEventError("empty value")
        if is_msgpack(value):
            return self._decode_struct(value)
        if len(value) != RECORD_SIZE:
            wide = self._by_id.get(int.from_bytes(bytes(value[:2]), "little"))
            if wide is not None and wide.dtype is not None and wide.dtype.itemsize == len(value):
                return self._fixed(value, wide)
            raise UnknownEventError(
                f"value of {len(value)} bytes starting 0x{value[0]:02x} is neither msgpack nor "
                f"a {RECORD_SIZE}-byte market record"
            )
        generic = np.frombuffer(value, dtype=MARKET_RECORD)[0]
        event_type = self.by_id(int(generic["type_id"]))
        if event_type.dtype is None or event_type.dtype.itemsize != len(value):
            raise UnknownEventError(
                f"{event_type.qualified_name} is not a {RECORD_SIZE}-byte fixed-width event"
            )
        return self._fixed(value, event_type)

    def current(self, event: Any) -> Any:
        """``event`` brought up to the current version of its type (itself if it is current)."""
        return self.upcasting.current(event)

    def _decode_struct(self, value: bytes | memoryview) -> Any:
        try:
            event = self._decoder.decode(value)
        except msgspec.DecodeError as exc:
            raise UnknownEventError(f"not a catalogue msgpack event: {exc}") from None
        if _ENCODER.encode(event) != value:
            raise UnknownEventError(
                f"not the canonical encoding of {self.type_of(event).qualified_name}: the same "
                "values encode to other bytes (a wider msgpack form)"
            )
        return event

    def _fixed(self, value: bytes | memoryview, event_type: EventType) -> Any:
        """The record of a fixed-width type; bytes no field covers must be zero (canonical)."""
        assert event_type.dtype is not None
        if np.frombuffer(value, dtype=np.uint8)[self._unused[event_type.type_id]].any():
            raise UnknownEventError(
                f"not the canonical encoding of {event_type.qualified_name}: bytes outside its "
                "fields must be zero"
            )
        return np.frombuffer(value, dtype=event_type.dtype)[0]

    def to_dict(self, value: bytes | memoryview) -> dict[str, Any]:
        """A readable, JSON-ready dict of one event: ``type`` (name@version), then its fields."""
        event = self.decode(value)
        if isinstance(event, msgspec.Struct):
            return {"type": self.type_of(event).qualified_name, **_struct_dict(event)}
        event_type = self.by_id(int(event["type_id"]))
        assert event_type.dtype is not None
        out: dict[str, Any] = {"type": event_type.qualified_name}
        for name in event_type.dtype.names or ():
            if name != "type_id":
                field = event[name]
                out[name] = field.tolist() if isinstance(field, np.ndarray) else field.item()
        return out


def _unused_bytes(dtype: np.dtype[Any]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The bytes of a fixed-width layout that no field covers (canonical records zero them)."""
    unused = np.ones(dtype.itemsize, dtype=bool)
    for spec in (dtype.fields or {}).values():
        unused[spec[1] : spec[1] + spec[0].itemsize] = False
    return unused


FIXED_TYPES: tuple[EventType, ...] = (
    MARKET_TYPES + BOOK_TYPES + FEATURE_TYPES + DECISION_TYPES + TRADING_FIXED_TYPES
)
MSGPACK_STRUCTS = CONTROL_STRUCTS + TRADING_STRUCTS + MODELS_STRUCTS + BROKER_STRUCTS
CATALOGUE: tuple[EventType, ...] = FIXED_TYPES + tuple(
    struct_type(name, cls) for name, cls in MSGPACK_STRUCTS
)
_ENCODER = msgspec.msgpack.Encoder(order="deterministic")

UPCASTERS: tuple[Upcaster, ...] = ()
"""The upcasters between shipped versions: none yet, every event type is at version 1. The
next version of a type adds its own here (docs/architecture.md)."""

EVENTS = Catalogue(CATALOGUE, UPCASTERS)
"""The catalogue Tapedeck reads and writes with."""

by_id = EVENTS.by_id
by_name = EVENTS.by_name
type_of_value = EVENTS.type_of_value
type_of = EVENTS.type_of
decode = EVENTS.decode
current = EVENTS.current
to_dict = EVENTS.to_dict


def is_msgpack(value: bytes | memoryview) -> bool:
    """Whether canonical bytes are a msgpack event (else they are a fixed-width record)."""
    return len(value) > 0 and value[0] in MSGPACK_FIRST_BYTES


def encode(event: msgspec.Struct) -> bytes:
    """The canonical bytes of a low-rate event."""
    return _ENCODER.encode(event)


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
