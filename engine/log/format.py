"""The embedded log's on-disk format: segment data files, batch index files and batch payloads.

A partition is a directory of segments. Segment ``<base offset>`` is two files:

``<base>.data``
    Batch payloads back to back, nothing else. In a fixed-width topic every payload is
    ``count * record_size`` bytes of records, so the data file is one array of records and
    the record at offset ``o`` starts at byte ``(o - base) * record_size``: O(1) seek, and a
    batch read is a zero-copy numpy view of the mapped file.
``<base>.index``
    One 64-byte entry per batch (``BATCH_ENTRY``): where its payload lies, how many records
    it holds from which offset, its layout, its time range, the CRC32C of its payload and the
    CRC32C of the entry itself. It is the sparse index of variable-size topics and the time
    index of every topic.

A batch is appended by writing its payload, then its entry; it is acknowledged only after
both are written (and synced, under the fsync policy). Readers consider a batch to exist only
once its entry is complete and its entry CRC holds, so a reader never sees half a batch.

Variable-layout payloads are one msgpack array of ``[timestamp, key, headers, value]``
records; ``key`` is bin or nil, ``headers`` an array of ``[name, bin]`` pairs or nil.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import crc32c
import msgspec
import numpy as np

MAGIC = 0x31424454  # b"TDB1" little-endian
ENTRY_SIZE = 64

BATCH_ENTRY = np.dtype(
    {
        "names": [
            "magic",
            "entry_crc",
            "base_offset",
            "data_pos",
            "data_len",
            "count",
            "payload_crc",
            "layout",
            "record_size",
            "min_ts",
            "max_ts",
        ],
        "formats": ["<u4", "<u4", "<i8", "<i8", "<u4", "<u4", "<u4", "u1", "<u2", "<i8", "<i8"],
        "offsets": [0, 4, 8, 16, 24, 28, 32, 36, 38, 40, 48],
        "itemsize": ENTRY_SIZE,
    }
)
"""One batch index entry. Bytes 37 and 56..63 are reserved and zero."""


class Layout(IntEnum):
    """How a batch payload holds its records."""

    VARIABLE = 0
    FIXED = 1


Header = tuple[str, bytes]
RecordTuple = tuple[int, bytes | None, list[Header] | None, bytes]

_PAYLOAD_ENCODER = msgspec.msgpack.Encoder()
_PAYLOAD_DECODER = msgspec.msgpack.Decoder(
    list[tuple[int, bytes | None, list[Header] | None, bytes]]
)


def crc(data: bytes | bytearray | memoryview) -> int:
    """CRC32C (Castagnoli), the checksum Kafka record batches use."""
    return int(crc32c.crc32c(data))


def make_entry(
    *,
    base_offset: int,
    data_pos: int,
    payload: bytes | memoryview,
    count: int,
    layout: Layout,
    record_size: int,
    min_ts: int,
    max_ts: int,
) -> bytes:
    """The 64 index bytes describing one batch, entry CRC included."""
    entry = np.zeros(1, dtype=BATCH_ENTRY)
    entry["magic"] = MAGIC
    entry["base_offset"] = base_offset
    entry["data_pos"] = data_pos
    entry["data_len"] = len(payload)
    entry["count"] = count
    entry["payload_crc"] = crc(payload)
    entry["layout"] = layout
    entry["record_size"] = record_size
    entry["min_ts"] = min_ts
    entry["max_ts"] = max_ts
    raw = bytearray(entry.tobytes())
    raw[4:8] = crc(raw[8:]).to_bytes(4, "little")
    return bytes(raw)


def entries_from_bytes(raw: bytes | memoryview) -> tuple[np.ndarray[Any, Any], int]:
    """Parse index bytes into entries; returns the entries and how many leading ones are valid.

    An entry is valid when its magic and its own CRC hold. Parsing stops at the first invalid
    one: the caller decides whether that is a torn tail or corruption.
    """
    whole = len(raw) // ENTRY_SIZE
    entries = np.frombuffer(raw, dtype=BATCH_ENTRY, count=whole)
    view = memoryview(raw)
    for i in range(whole):
        start = i * ENTRY_SIZE
        ok = entries["magic"][i] == MAGIC and entries["entry_crc"][i] == crc(
            view[start + 8 : start + ENTRY_SIZE]
        )
        if not ok:
            return entries, i
    return entries, whole


def encode_variable(records: list[RecordTuple]) -> bytes:
    """Payload of a variable-layout batch."""
    return _PAYLOAD_ENCODER.encode(records)


def decode_variable(payload: bytes | memoryview) -> list[RecordTuple]:
    """Records of a variable-layout batch payload."""
    return _PAYLOAD_DECODER.decode(payload)
