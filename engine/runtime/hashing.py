"""Hash chains over a topic's canonical bytes: what a manifest records and replay recomputes.

Events are grouped by offset into blocks of :data:`BLOCK` (block k holds offsets
``[k*BLOCK, (k+1)*BLOCK)``, the last one possibly short)::

    h0     = sha256("tapedeck-chain-v1:" + schema name)
    h(k+1) = sha256(h(k) + bytes of block k)

A block's bytes are its records back to back for fixed-width topics, and each value prefixed
by its little-endian u32 length for msgpack topics. The chain's value is the hash after the
last block. Blocks are cut by offset, not by how events were written, so the value depends
only on the topic's content; and a chain can stop at a snapshot and continue after a restart
from ``(count, hash of the complete blocks)`` plus the short block's events re-read.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

from engine.log.reader import FixedBatch, PartitionReader
from engine.log.topic import TopicCodec

BLOCK = 4096


def chain_seed(schema: str) -> bytes:
    """h0 of a topic whose values are ``schema`` events."""
    return hashlib.sha256(f"tapedeck-chain-v1:{schema}".encode()).digest()


class ChainHasher:
    """Feeds a topic's events, in offset order, into its hash chain."""

    def __init__(self, schema: str, count: int = 0, chain: bytes | None = None) -> None:
        # Resuming at ``count``: the events of its short last block are fed again by the
        # caller (re-read from the topic), so only complete blocks are taken as done.
        self.schema = schema
        self.count = count - count % BLOCK
        self.chain = chain if chain is not None else chain_seed(schema)
        self._pending: list[bytes] = []
        self._pending_count = 0

    def update_fixed(self, records: np.ndarray[Any, Any]) -> None:
        """Absorb fixed-width records (any dtype; their raw bytes are hashed)."""
        raw = np.ascontiguousarray(records).view(np.uint8).reshape(len(records), -1)
        i = 0
        while i < len(raw):
            take = min(BLOCK - self._pending_count, len(raw) - i)
            self._pending.append(raw[i : i + take].tobytes())
            self._add(take)
            i += take

    def update_values(self, values: Iterable[bytes]) -> None:
        """Absorb msgpack values (each length-prefixed in the block)."""
        for value in values:
            self._pending.append(struct.pack("<I", len(value)) + value)
            self._add(1)

    def _add(self, n: int) -> None:
        self._pending_count += n
        if self._pending_count == BLOCK:
            self.chain = hashlib.sha256(self.chain + b"".join(self._pending)).digest()
            self.count += BLOCK
            self._pending.clear()
            self._pending_count = 0

    @property
    def total(self) -> int:
        """Events absorbed so far."""
        return self.count + self._pending_count

    def hexdigest(self) -> str:
        """The chain's value over everything absorbed so far."""
        if not self._pending_count:
            return self.chain.hex()
        return hashlib.sha256(self.chain + b"".join(self._pending)).hexdigest()

    def checkpoint(self) -> tuple[int, bytes]:
        """``(events absorbed, hash of the complete blocks)`` for a snapshot."""
        return self.total, self.chain


def topic_chain(reader: PartitionReader) -> tuple[int, str]:
    """``(events, chain)`` of a whole partition as stored.

    Fixed topics chain their records' bytes; msgpack and mixed topics (a session journal)
    chain every value length-prefixed, fixed-width records included.
    """
    fixed = reader.config.codec is TopicCodec.FIXED
    hasher = ChainHasher(reader.config.schema_name)
    for batch in reader.batches():
        if fixed and isinstance(batch, FixedBatch):
            hasher.update_fixed(batch.records)
        else:
            hasher.update_values(batch.values())
    return hasher.total, hasher.hexdigest()
