"""The event catalogue: lookups, documentation and one canonical encoding per event."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.events import (
    CATALOGUE,
    UnknownEventError,
    by_id,
    by_name,
    decode,
    encode,
    to_dict,
    type_of,
)
from engine.events.control import ClockTicked, HaltTrading, InstrumentSpec, SessionOpened
from engine.events.market import (
    MARKET_RECORD,
    MARKET_TYPES,
    RECORD_SIZE,
    TIMESTAMP_OFFSET,
    TRADE,
    as_market,
    new_records,
)
from tests.factories import (
    CONTROL_TYPES,
    FIXED_TYPES,
    control_events,
    market_events,
    market_fields,
    market_record,
)

# -- the catalogue ---------------------------------------------------------------------------


def test_every_type_is_found_by_id_and_by_name() -> None:
    for event_type in CATALOGUE:
        assert by_id(event_type.type_id) is event_type
        assert by_name(event_type.name) is event_type
        assert by_name(event_type.name, event_type.version) is event_type
        assert event_type.qualified_name == f"{event_type.name}@{event_type.version}"
    assert len({t.type_id for t in CATALOGUE}) == len(CATALOGUE)


def test_unknown_lookups_say_what_is_known() -> None:
    with pytest.raises(UnknownEventError, match="id 9999"):
        by_id(9999)
    with pytest.raises(UnknownEventError, match=r"market\.trade") as info:
        by_name("market.nope")
    assert "market.nope" in str(info.value)
    with pytest.raises(UnknownEventError, match="@99"):
        by_name("market.trade", 99)


def test_every_type_and_field_is_documented() -> None:
    for event_type in CATALOGUE:
        assert event_type.doc, event_type.name
        assert event_type.fields[0].name == "type_id"
        for field in event_type.fields:
            assert field.description, f"{event_type.name}.{field.name}"


def test_market_types_share_one_64_byte_layout() -> None:
    for event_type in MARKET_TYPES:
        dtype = event_type.dtype
        assert dtype is not None
        assert dtype.fields is not None
        assert dtype.itemsize == RECORD_SIZE
        assert event_type.type_id < 0x80
        assert dtype.fields["type_id"][1] == 0
        assert dtype.fields["ts_event"][1] == TIMESTAMP_OFFSET
        assert dtype.fields["ts_event"][0] == np.dtype("<i8")
        for field in event_type.fields:
            assert field.offset == dtype.fields[field.name][1]
            # Every field sits at the same place (and width) in the generic view.
            generic = [n for n, spec in MARKET_RECORD.fields.items() if spec[1] == field.offset]
            assert generic, f"{event_type.name}.{field.name} at {field.offset}"


def test_new_records_are_zero_but_for_the_type_id() -> None:
    for event_type in MARKET_TYPES:
        records = new_records(event_type, 3)
        raw = records.view(np.uint8).reshape(3, RECORD_SIZE)
        assert (raw[:, 0] == event_type.type_id).all()
        assert not raw[:, 1:].any()
    with pytest.raises(TypeError):
        new_records(CONTROL_TYPES[0], 1)


def test_type_of_names_each_control_struct() -> None:
    for event_type in CONTROL_TYPES:
        assert event_type.struct is not None
        assert event_type.struct.__struct_config__.tag == event_type.type_id
    event = ClockTicked(ts_event=1, ts_recv=2)
    assert type_of(event) is by_name("clock.ticked")
    with pytest.raises(UnknownEventError):
        type_of(InstrumentSpec("X", "V", "UTC", 2, 0, 1, 1, "USD"))


# -- fixed-width round trips -----------------------------------------------------------------


@pytest.mark.parametrize("event_type", FIXED_TYPES, ids=lambda t: t.name)
@given(data=st.data())
def test_fixed_event_round_trip(event_type: Any, data: st.DataObject) -> None:
    fields = data.draw(market_fields(event_type))
    raw = market_record(event_type, **fields).tobytes()
    assert len(raw) == event_type.dtype.itemsize
    assert raw[0] == event_type.type_id
    assert raw[1] == 0
    event = decode(raw)
    assert event.dtype == event_type.dtype
    for name, value in fields.items():
        assert event[name].tolist() == value, name
    assert event.tobytes() == raw
    ts_at = event_type.dtype.fields["ts_event"][1]
    assert int.from_bytes(raw[ts_at : ts_at + 8], "little", signed=True) == fields["ts_event"]
    assert to_dict(raw) == {"type": event_type.qualified_name, **fields}


@given(events=st.lists(market_events(), min_size=1, max_size=20))
def test_mixed_market_batch_reads_through_the_generic_view(events: list[Any]) -> None:
    raw = b"".join(e[2] for e in events)
    generic = as_market(np.frombuffer(raw, dtype=MARKET_RECORD))
    assert [int(t) for t in generic["type_id"]] == [e[0].type_id for e in events]
    assert [int(t) for t in generic["ts_event"]] == [e[1]["ts_event"] for e in events]
    for i, (event_type, fields, value) in enumerate(events):
        assert decode(raw[i * RECORD_SIZE : (i + 1) * RECORD_SIZE]).tobytes() == value
        assert to_dict(value)["type"] == event_type.qualified_name
        assert all(to_dict(value)[k] == v for k, v in fields.items())


@given(event=market_events())
def test_equal_market_events_encode_identically(event: Any) -> None:
    event_type, fields, raw = event
    reversed_fields = dict(reversed(list(fields.items())))
    again = market_record(event_type, **reversed_fields)
    assert again.tobytes() == raw
    assert again[0] == decode(raw)


@pytest.mark.parametrize("event_type", FIXED_TYPES, ids=lambda t: t.name)
def test_fixed_bytes_outside_the_type_fields_are_not_canonical(event_type: Any) -> None:
    """Slots a type does not use must be zero; decode refuses bytes where they are not."""
    used = np.zeros(event_type.dtype.itemsize, dtype=bool)
    for spec in event_type.dtype.fields.values():
        used[spec[1] : spec[1] + spec[0].itemsize] = True
    unused = np.flatnonzero(~used)
    assert len(unused), "every fixed type leaves some bytes unused"
    for position in unused:
        raw = bytearray(market_record(event_type, ts_event=5).tobytes())
        raw[position] = 0x01
        with pytest.raises(UnknownEventError, match="canonical"):
            decode(bytes(raw))


def test_fixed_width_decode_errors() -> None:
    with pytest.raises(UnknownEventError, match="empty"):
        decode(b"")
    with pytest.raises(UnknownEventError, match="63 bytes"):
        decode(market_record(TRADE).tobytes()[:-1])
    raw = bytearray(market_record(TRADE).tobytes())
    raw[0] = 0x7F  # a type id the catalogue does not have
    with pytest.raises(UnknownEventError, match="127"):
        decode(bytes(raw))
    for wide in FIXED_TYPES:
        if wide.dtype.itemsize != RECORD_SIZE:  # its id on a 64-byte value
            with pytest.raises(UnknownEventError):
                decode(wide.type_id.to_bytes(2, "little") + bytes(RECORD_SIZE - 2))


# -- msgpack round trips ---------------------------------------------------------------------


@given(event=control_events())
def test_control_event_round_trip(event: msgspec.Struct) -> None:
    raw = encode(event)
    assert raw[0] in range(0x90, 0xA0)
    back = decode(raw)
    assert back == event
    assert type(back) is type(event)
    assert encode(back) == raw
    event_type = type_of(event)
    assert event_type.struct is type(event)
    as_dict = to_dict(raw)
    assert as_dict.pop("type") == event_type.qualified_name
    assert as_dict == _plain(event)
    assert list(as_dict) == [f.name for f in event_type.fields[1:]]


def _plain(event: msgspec.Struct) -> dict[str, Any]:
    return {
        f: _plain(v) if isinstance(v, msgspec.Struct) else v
        for f in event.__struct_fields__
        for v in [getattr(event, f)]
    }


@given(event=control_events())
def test_equal_control_events_encode_identically(event: msgspec.Struct) -> None:
    fields = {f: getattr(event, f) for f in reversed(event.__struct_fields__)}
    twin = type(event)(**fields)
    assert twin == event
    assert twin is not event
    assert encode(twin) == encode(event)


@given(event=control_events(), junk=st.binary(min_size=1, max_size=4))
def test_trailing_bytes_are_refused(event: msgspec.Struct, junk: bytes) -> None:
    with pytest.raises(UnknownEventError):
        decode(encode(event) + junk)


def test_non_canonical_msgpack_is_refused() -> None:
    """The same values in a wider msgpack form are not the canonical bytes of the event."""
    canonical = encode(ClockTicked(ts_event=1, ts_recv=2))
    assert canonical == bytes([0x93, 102, 0x01, 0x02])
    wide_int = bytes([0x93, 102, 0xCF, *(1).to_bytes(8, "big"), 0x02])
    array16 = bytes([0xDC, 0x00, 0x03, 102, 0x01, 0x02])
    halt = encode(HaltTrading(ts_event=1, ts_recv=2, reason="r", operator="o"))
    str8 = halt.replace(b"\xa1r", b"\xd9\x01r")
    for raw in (wide_int, array16, str8):
        with pytest.raises(UnknownEventError, match="canonical"):
            decode(raw)


def test_msgpack_decode_errors() -> None:
    with pytest.raises(UnknownEventError):
        decode(bytes([0x93, 0x7F, 0x01, 0x02]))  # tag 127 is no control event
    with pytest.raises(UnknownEventError):
        decode(bytes([0x92, 102, 0x01]))  # a field missing
    with pytest.raises(UnknownEventError):
        decode(bytes([0x94, 102, 0x01, 0x02, 0x03]))  # an unknown extra field


def test_nested_struct_is_a_dict_in_to_dict() -> None:
    spec = InstrumentSpec("AAPL", "NASDAQ", "America/New_York", 4, 0, 1, 1, "USD")
    event = SessionOpened(ts_event=10, ts_recv=11, session="s", instrument=spec, source="lobster")
    as_dict = to_dict(encode(event))
    assert as_dict["type"] == "session.opened@1"
    assert as_dict["instrument"]["symbol"] == "AAPL"
    assert as_dict["instrument"]["price_scale"] == 4
    assert as_dict["source"] == "lobster"
