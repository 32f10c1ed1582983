"""Stored layouts stay readable: frozen samples of every event type, and upcasters.

``tests/frozen/events.txt`` holds bytes an earlier Tapedeck wrote, one line per type and
version. Each must still decode to its type and re-encode to the same bytes: a layout that
changed without a new version fails here. Upcasters are tried on a catalogue of this test's
own: a low-rate type in three versions and a fixed-width market type in two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import msgspec
import numpy as np
import pytest

from engine.events import CATALOGUE, EVENTS, Catalogue, Upcaster, encode
from engine.events.catalogue import struct_type
from engine.events.control import SessionClosed
from engine.events.market import MARKET_RECORD, MARKET_TYPES
from engine.events.types import Codec, EventType, fixed_dtype
from engine.runtime.driver import control_slice, market_slice

FROZEN = Path(__file__).resolve().parents[1] / "frozen" / "events.txt"


def frozen_lines() -> list[tuple[str, bytes]]:
    lines = [line.split() for line in FROZEN.read_text().splitlines() if line[:1] != "#"]
    return [(name, bytes.fromhex(raw)) for name, raw in lines]


@pytest.mark.parametrize(("qualified", "raw"), frozen_lines(), ids=lambda v: str(v)[:40])
def test_every_frozen_sample_still_decodes_to_its_type_and_bytes(
    qualified: str, raw: bytes
) -> None:
    name, version = qualified.split("@")
    event_type = EVENTS.by_name(name, int(version))
    event = EVENTS.decode(raw)
    if event_type.codec is Codec.MSGPACK:
        assert EVENTS.type_of(event) is event_type
        assert encode(event) == raw
    else:
        assert int(event["type_id"]) == event_type.type_id
        assert event.tobytes() == raw


def test_every_catalogue_type_has_a_frozen_sample() -> None:
    frozen = {name for name, _ in frozen_lines()}
    missing = [t.qualified_name for t in CATALOGUE if t.qualified_name not in frozen]
    assert not missing, f"run scripts/freeze_events.py to freeze a sample of {missing}"


# -- a low-rate type in three versions ----------------------------------------------------------


class NoteV1(msgspec.Struct, tag=240, frozen=True, array_like=True, forbid_unknown_fields=True):
    """v1: a price as text."""

    ts_event: int
    price: str


class NoteV2(msgspec.Struct, tag=241, frozen=True, array_like=True, forbid_unknown_fields=True):
    """v2: the price in integer ticks."""

    VERSION: ClassVar[int] = 2
    ts_event: int
    price_ticks: int


class NoteV3(msgspec.Struct, tag=242, frozen=True, array_like=True, forbid_unknown_fields=True):
    """v3: and who wrote it."""

    VERSION: ClassVar[int] = 3
    ts_event: int
    price_ticks: int
    author: str


def upcast_note_v1_v2(old: NoteV1) -> NoteV2:
    return NoteV2(old.ts_event, round(float(old.price) * 100))


def upcast_note_v2_v3(old: NoteV2) -> NoteV3:
    return NoteV3(old.ts_event, old.price_ticks, author="unknown")


NOTES = tuple(struct_type("test.note", cls) for cls in (NoteV1, NoteV2, NoteV3))

# -- a fixed-width market type in two versions ----------------------------------------------------

OLD_TRADE = MARKET_TYPES[0]
"""``market.trade`` v1, as shipped."""
TRADE_V2 = EventType(
    type_id=120,
    name=OLD_TRADE.name,
    version=2,
    codec=Codec.FIXED,
    doc="a trade, v2: notional added in the spare bytes",
    fields=OLD_TRADE.fields,
    dtype=fixed_dtype(
        (
            *((n, f[0], f[1], "") for n, f in OLD_TRADE.dtype.fields.items()),  # type: ignore[union-attr]
            ("notional", "<i8", 48, "price * size"),
        ),
        64,
    ),
)


def upcast_trade_v1_v2(old: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    new = np.zeros(len(old), TRADE_V2.dtype)
    for name in old.dtype.names:
        new[name] = old[name]
    new["type_id"] = TRADE_V2.type_id
    new["notional"] = old["price"] * old["size"]
    return new


def catalogue(*upcasters: Upcaster) -> Catalogue:
    return Catalogue((*CATALOGUE, *NOTES, TRADE_V2), upcasters)


FULL = catalogue(
    Upcaster("test.note", 1, upcast_note_v1_v2),
    Upcaster("test.note", 2, upcast_note_v2_v3),
    Upcaster("market.trade", 1, upcast_trade_v1_v2),
)

FROZEN_NOTE_V1 = bytes.fromhex("93ccf0cd0539a4312e3233")
"""``NoteV1(1337, "1.23")`` as encoded when this test was written."""


def test_a_frozen_old_event_decodes_as_itself_and_upcasts_through_every_version() -> None:
    old = FULL.decode(FROZEN_NOTE_V1)
    assert old == NoteV1(1337, "1.23")
    assert FULL.type_of(old).qualified_name == "test.note@1"
    assert FULL.current(old) == NoteV3(1337, 123, author="unknown")
    assert FULL.current(NoteV2(5, 7)) == NoteV3(5, 7, author="unknown")
    assert FULL.current(NoteV3(5, 7, "me")) == NoteV3(5, 7, "me")


def test_without_upcasters_events_stay_as_stored() -> None:
    assert catalogue().current(NoteV1(1, "2")) == NoteV1(1, "2")
    records = np.zeros(3, MARKET_RECORD)
    assert catalogue().upcasting.current_records(records) is records


def test_old_fixed_records_in_a_mixed_batch_are_upcast_in_place_of_order() -> None:
    records = np.zeros(4, MARKET_RECORD)
    records["type_id"] = [OLD_TRADE.type_id, MARKET_TYPES[1].type_id, OLD_TRADE.type_id, 1]
    records["price"] = [10, 20, 30, 40]
    records["size"] = [2, 3, 4, 5]
    out = FULL.upcasting.current_records(records)
    assert out.dtype == MARKET_RECORD
    assert out["type_id"].tolist() == [120, MARKET_TYPES[1].type_id, 120, 120]
    notional = out.view(TRADE_V2.dtype)["notional"]
    assert [int(notional[i]) for i in (0, 2, 3)] == [20, 120, 200]
    assert out[1].tobytes() == records[1].tobytes()  # not a trade: untouched
    assert records["type_id"].tolist()[0] == OLD_TRADE.type_id  # the input is not mutated


def test_journal_slices_are_decoded_through_the_shipped_catalogue() -> None:
    # no shipped upcasters yet: slices carry the events as they were stored
    records = np.zeros(2, MARKET_RECORD)
    records["type_id"] = OLD_TRADE.type_id
    market = market_slice(7, records)
    assert (market.start, market.stop) == (7, 9)
    assert market.market is records
    closed = SessionClosed(1, 2, "s", "end of input")
    piece = control_slice(3, [encode(closed)])
    assert (piece.start, piece.stop, piece.control) == (3, 4, (closed,))


def test_an_upcaster_must_keep_codec_and_record_size() -> None:
    narrow = EventType(121, "test.narrow", 1, Codec.FIXED, "", (), fixed_dtype((), 64))
    wide = EventType(122, "test.narrow", 2, Codec.FIXED, "", (), fixed_dtype((), 72))
    with pytest.raises(ValueError, match="changes the record size"):
        Catalogue((*CATALOGUE, narrow, wide), (Upcaster("test.narrow", 1, lambda r: r),))
    with pytest.raises(ValueError, match=r"no event type test\.note@4"):
        catalogue(Upcaster("test.note", 3, upcast_note_v2_v3))
    with pytest.raises(ValueError, match=r"two upcasters from test\.note@1"):
        catalogue(Upcaster("test.note", 1, upcast_note_v1_v2), Upcaster("test.note", 1, str))


def test_an_upcaster_that_returns_the_wrong_layout_is_refused() -> None:
    broken = catalogue(Upcaster("market.trade", 1, lambda old: old))
    records = np.zeros(1, MARKET_RECORD)
    records["type_id"] = OLD_TRADE.type_id
    with pytest.raises(ValueError, match=r"must return 1 records of market\.trade@2"):
        broken.upcasting.current_records(records)
