"""The causal chain of a derived event, back to the journal events behind it (``tape trace``).

Every derived event carries the journal offset that caused it, and the runner pushes each
journal event through all stages before the next, so the events a stage read when it emitted
an event caused by journal offset J are, on each input port, those caused by J, or when none
was, the last one before J (the input value in effect). Causes never decrease along a port, so
each lookup is a binary search over the port's topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events import to_dict
from engine.events.market import F_LAST, MARKET_RECORD
from engine.log import EmbeddedLog, FixedBatch
from engine.log.reader import PartitionReader
from engine.runtime.manifest import RunError, RunManifest, output_topic, read_manifest
from engine.runtime.processor import Port
from engine.runtime.topology import JOURNAL, Catalog, Pipeline

MAX_SAME_CAUSE = 5
MAX_MESSAGE_RECORDS = 12


@dataclass
class Link:
    """One event in a causal chain, with the events it was computed from."""

    port: str
    """Port name, or ``journal``."""
    offset: int
    event: dict[str, Any]
    relation: str
    """How it relates to its parent: ``caused by`` J, ``in effect at`` J, or ``root``."""
    inputs: list[Link] = field(default_factory=list)


def trace(
    log: EmbeddedLog, run_id: str, port_or_topic: str, offset: int, *, pipelines: Catalog
) -> Link:
    """The chain behind event ``offset`` of a run's port (name or full topic name); the run's
    pipeline is looked up by name in ``pipelines``."""
    manifest = read_manifest(log.root, run_id)
    port_name = port_or_topic.removeprefix(f"run.{run_id}.")
    chosen = pipelines.get(manifest.pipeline)
    _, port = chosen.producer_of(port_name)
    reader = log.reader(output_topic(run_id, port_name))
    if not 0 <= offset < reader.end_offset:
        raise RunError(
            f"{output_topic(run_id, port_name)} has offsets 0..{reader.end_offset - 1}; "
            f"there is no {offset}"
        )
    event = _decoded(reader, offset)
    root = Link(port_name, offset, event, "root")
    _expand(log, manifest, chosen, root, port, int(event[port.cause]))
    return root


def _expand(
    log: EmbeddedLog, manifest: RunManifest, chosen: Pipeline, link: Link, port: Port, cause: int
) -> None:
    stage, _ = chosen.producer_of(port.name)
    for name in stage.inputs:
        _, upstream = chosen.producer_of(name)
        reader = log.reader(output_topic(manifest.run_id, name))
        first = _lower_bound(reader, upstream, cause)
        same: list[Link] = []
        o = first
        while o < reader.end_offset and len(same) < MAX_SAME_CAUSE:
            event = _decoded(reader, o)
            if int(event[upstream.cause]) != cause:
                break
            same.append(Link(name, o, event, f"caused by journal {cause}"))
            o += 1
        if not same and first > 0:
            event = _decoded(reader, first - 1)
            same = [Link(name, first - 1, event, f"in effect at journal {cause}")]
        for child in same:
            _expand(log, manifest, chosen, child, upstream, int(child.event[upstream.cause]))
        link.inputs.extend(same)
    if not stage.inputs:  # a source stage: below it is the journal itself
        link.inputs.extend(_journal_message(log.reader(manifest.journal_topic), cause))


def _journal_message(reader: PartitionReader, cause: int) -> list[Link]:
    """The journal event ``cause`` and, for a market record, the rest of its source message."""
    batch = reader.read(cause, 1)
    if batch is None:
        return []
    if not isinstance(batch, FixedBatch):
        return [Link(JOURNAL, cause, _decoded(reader, cause), "root")]
    lo = cause  # a message starts after the previous message's last record
    while lo > max(reader.start_offset, cause - MAX_MESSAGE_RECORDS) and not (
        _flags(reader, lo - 1) & F_LAST
    ):
        lo -= 1
    hi = cause
    while hi < cause + MAX_MESSAGE_RECORDS and not _flags(reader, hi) & F_LAST:
        hi += 1
    return [
        Link(JOURNAL, o, _decoded(reader, o), "cause" if o == cause else "same message")
        for o in range(lo, min(hi, reader.end_offset - 1) + 1)
    ]


def _flags(reader: PartitionReader, offset: int) -> int:
    batch = reader.read(offset, 1)
    if not isinstance(batch, FixedBatch):
        return F_LAST
    return int(batch.view(MARKET_RECORD)["flags"][0])


def event_at(reader: PartitionReader, offset: int) -> dict[str, Any] | None:
    """The event at ``offset`` decoded through the catalogue, or None outside the partition."""
    if not reader.start_offset <= offset < reader.end_offset:
        return None
    batch = reader.read(offset, 1)
    assert batch is not None
    return to_dict(batch.values()[0])


def _decoded(reader: PartitionReader, offset: int) -> dict[str, Any]:
    event = event_at(reader, offset)
    assert event is not None, f"{reader.topic} has no offset {offset}"
    return event


def _cause_at(reader: PartitionReader, port: Port, offset: int) -> int:
    batch = reader.read(offset, 1)
    assert batch is not None
    if isinstance(batch, FixedBatch):
        assert port.event_type.dtype is not None
        return int(np.asarray(batch.view(port.event_type.dtype)[port.cause])[0])
    return int(to_dict(batch.values()[0])[port.cause])


def _lower_bound(reader: PartitionReader, port: Port, cause: int) -> int:
    """First offset whose cause is >= ``cause`` (causes never decrease along a port)."""
    lo, hi = reader.start_offset, reader.end_offset
    while lo < hi:
        mid = (lo + hi) // 2
        if _cause_at(reader, port, mid) < cause:
            lo = mid + 1
        else:
            hi = mid
    return lo
