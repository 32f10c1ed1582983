"""Event and record builders shared by the tests: small factories and hypothesis strategies.

Strategies are derived from the catalogue itself (numpy dtypes of the market types, msgspec
type info of the control structs), so a new event type is covered without touching the tests.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
import numpy as np
from hypothesis import strategies as st

from engine.app.ingest.session import Bad, Oracle
from engine.events import CATALOGUE, Codec, EventType
from engine.events.market import MARKET_TYPES, RECORD_SIZE, TIMESTAMP_OFFSET, new_records
from engine.log import EmbeddedLog, TopicCodec, TopicConfig

FIXED_TYPES = tuple(t for t in CATALOGUE if t.codec is Codec.FIXED)
"""Every fixed-width type: the 64-byte market records and wider derived ones (``book.top``)."""
CONTROL_TYPES = tuple(t for t in CATALOGUE if t.codec is Codec.MSGPACK)

MSGPACK_INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)
"""Every integer msgpack (and msgspec's ``int``) can carry."""

TIMESTAMP = st.integers(min_value=-(2**63), max_value=2**63 - 1)


# -- fixed-width market records --------------------------------------------------------------


def _field_strategy(dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    if dtype.subdtype is not None:  # a fixed-size array field, e.g. ten price levels
        base, shape = dtype.subdtype
        (length,) = shape
        return st.lists(_field_strategy(base), min_size=length, max_size=length)
    if dtype.kind == "f":  # NaN != NaN, so it cannot be compared back; it is still stored
        return st.floats(allow_nan=False, width=8 * dtype.itemsize)
    info = np.iinfo(dtype)
    return st.integers(min_value=int(info.min), max_value=int(info.max))


@st.composite
def market_fields(draw: st.DrawFn, event_type: EventType) -> dict[str, Any]:
    """Random values, within each field's dtype range, for every field but ``type_id``."""
    assert event_type.dtype is not None
    assert event_type.dtype.fields is not None
    return {
        name: draw(_field_strategy(spec[0]))
        for name, spec in event_type.dtype.fields.items()
        if name != "type_id"
    }


def market_record(event_type: EventType, **fields: Any) -> np.ndarray[Any, Any]:
    """One record of ``event_type`` (a length-1 array) with ``fields`` set, the rest zero."""
    records = new_records(event_type, 1)
    for name, value in fields.items():
        records[name] = value
    return records


@st.composite
def market_events(
    draw: st.DrawFn, types: tuple[EventType, ...] = MARKET_TYPES
) -> tuple[EventType, dict[str, Any], bytes]:
    """(type, field values, canonical bytes) of a random market event."""
    event_type = draw(st.sampled_from(types))
    fields = draw(market_fields(event_type))
    return event_type, fields, market_record(event_type, **fields).tobytes()


# -- msgpack control events ------------------------------------------------------------------


def _strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.Metadata):
        return _strategy_for(t.type)
    if isinstance(t, mi.IntType):
        return MSGPACK_INT
    if isinstance(t, mi.StrType):
        return st.text(max_size=40)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.FloatType):  # NaN != NaN, so an event holding one never compares equal
        return st.floats(allow_nan=False)
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    if isinstance(t, mi.ListType):
        return st.lists(_strategy_for(t.item_type), max_size=5)
    raise NotImplementedError(f"no strategy for field type {t!r}; extend tests/factories.py")


def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Instances of a msgspec Struct with random valid values for every field."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields = {f.name: _strategy_for(f.type) for f in info.fields}
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


def control_events(
    types: tuple[EventType, ...] = CONTROL_TYPES,
) -> st.SearchStrategy[msgspec.Struct]:
    """A random instance of any low-rate (msgpack) event type."""
    strategies = []
    for event_type in types:
        assert event_type.struct is not None
        strategies.append(struct_strategy(event_type.struct))
    return st.one_of(strategies)


# -- log records -----------------------------------------------------------------------------


def numbered_records(
    start: int, count: int, record_size: int = RECORD_SIZE
) -> np.ndarray[Any, Any]:
    """``count`` records whose every byte is a pure function of their offset.

    Record ``o`` holds ``o`` at byte 0, the timestamp ``1_000 * o`` at ``TIMESTAMP_OFFSET``
    and a byte pattern derived from ``o`` after that, so a test can check any record it reads
    back without keeping a copy of what was written.
    """
    offsets = np.arange(start, start + count, dtype=np.int64)
    raw = np.zeros((count, record_size), dtype=np.uint8)
    raw[:, 0:8] = offsets.view(np.uint8).reshape(count, 8)
    raw[:, TIMESTAMP_OFFSET : TIMESTAMP_OFFSET + 8] = (
        (offsets * 1_000).view(np.uint8).reshape(count, 8)
    )
    pattern = (offsets[:, None] * 31 + np.arange(record_size - 16)[None, :] * 7) % 251
    raw[:, 16:] = pattern.astype(np.uint8)
    return raw.view(np.dtype((np.void, record_size))).ravel()


def random_records(rng: np.random.Generator, count: int, record_size: int) -> np.ndarray[Any, Any]:
    """``count`` records of random bytes (fixed-width, ``void`` dtype)."""
    raw = rng.integers(0, 256, size=(count, record_size), dtype=np.uint8)
    return raw.view(np.dtype((np.void, record_size))).ravel()


def timestamp_at(value: bytes, offset: int = TIMESTAMP_OFFSET) -> int:
    """The little-endian int64 at ``offset`` of a fixed-width record."""
    return int.from_bytes(value[offset : offset + 8], "little", signed=True)


def fixed_topic(
    log: EmbeddedLog,
    name: str = "ticks",
    *,
    record_size: int = RECORD_SIZE,
    segment_bytes: int = 4096,
    partitions: int = 1,
) -> TopicConfig:
    """Create a fixed-width topic of small segments."""
    return log.create_topic(
        name,
        TopicConfig(
            "test.fixed",
            1,
            TopicCodec.FIXED,
            partitions=partitions,
            record_size=record_size,
            timestamp_offset=TIMESTAMP_OFFSET,
            segment_bytes=segment_bytes,
        ),
    )


def msgpack_topic(
    log: EmbeddedLog, name: str = "events", *, segment_bytes: int = 4096, partitions: int = 1
) -> TopicConfig:
    """Create a variable-size (msgpack) topic of small segments."""
    return log.create_topic(
        name,
        TopicConfig(
            "test.msgpack",
            1,
            TopicCodec.MSGPACK,
            partitions=partitions,
            segment_bytes=segment_bytes,
        ),
    )


# -- importer output ------------------------------------------------------------------------


def items_key(items: list[Any]) -> list[tuple[str, Any]]:
    """Items as comparable values (arrays by their bytes, events and bad lines by value)."""
    out: list[tuple[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append(("raised", item))
            continue
        if isinstance(item, np.ndarray):
            out.append(("records", item.tobytes()))
        elif isinstance(item, Oracle):
            out.append(("oracle", item.tops.tobytes()))
        elif isinstance(item, Bad):
            out.append(("bad", item))
        else:
            out.append((type(item).__name__, msgspec.to_builtins(item)))
    return out
