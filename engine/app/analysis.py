"""polars DataFrames straight from the log, and Parquet exports of runs (docs/analysts.md).

``topic_frame(log, topic)`` decodes a topic through the event catalogue: one row per record,
``offset`` (its log offset) and ``type`` (the event name) first, then the event's fields.

- Fixed-width records become one column per field, straight from numpy. Array fields (the ten
  book levels, the decision's six weights, ...) are polars ``Array`` columns, except the 65
  values of ``features.vector``, which become one column per feature (named as in
  ``streams.features.schema.NAMES``, as in the SQL store). ``book.top``'s ``offset`` field (the
  causing journal offset) is ``cause``, as in the store, so ``offset`` is always the log's.
- A journal mixes market types that share one 64-byte layout: without ``event`` their slots
  keep the generic names (``price``, ``size``, ``id``, ``price2``, ``size2``; see
  ``engine.events.market``); ``event="market.trade"`` keeps that type's rows under its own
  field names.
- msgpack events (control, risk, orders, executions) become rows of their fields; a nested
  struct (``session.opened``'s instrument) is a struct column. Rows of different kinds share
  a column where their fields share a name, and are null elsewhere.

Event times (``ts_event``, ``ts_recv``, ``origin_ts``, ``arrives_at``) are
``Datetime("ns", "UTC")``; ``NaN`` stays ``NaN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

from engine.events import by_id, by_name, decode, type_of
from engine.events.features import N_VALUES
from engine.events.market import MARKET_RECORD, RECORD_SIZE
from engine.log import EmbeddedLog, FixedBatch
from engine.runtime.manifest import read_manifest
from streams.features.schema import NAMES as FEATURE_NAMES

TIME_COLUMNS = ("ts_event", "ts_recv", "origin_ts", "arrives_at")
"""Integer nanosecond columns turned into UTC datetimes."""
UTC_NS = pl.Datetime("ns", "UTC")


def topic_frame(
    log: EmbeddedLog,
    topic: str,
    *,
    event: str | None = None,
    start: int | None = None,
    stop: int | None = None,
    partition: int = 0,
) -> pl.DataFrame:
    """Every record of ``topic`` (offsets ``start`` to ``stop``, stop exclusive), decoded.

    ``event`` keeps only that event type (``"market.trade"``), under its own field names.
    """
    only = by_name(event).type_id if event is not None else None
    reader = log.reader(topic, partition)
    end = reader.end_offset if stop is None else min(stop, reader.end_offset)
    fixed: list[tuple[int, np.ndarray[Any, Any]]] = []
    rows: list[dict[str, Any]] = []
    for batch in reader.batches(start, end):
        if isinstance(batch, FixedBatch):
            fixed.append((batch.base_offset, batch.records))
        else:
            for i, value in enumerate(batch.values()):
                decoded = decode(value)
                if only is None or type_of(decoded).type_id == only:
                    rows.append(_struct_row(batch.base_offset + i, decoded))
    frames = [f for f in (_fixed_frame(fixed, only), _struct_frame(rows)) if f is not None]
    if not frames:
        return pl.DataFrame(schema={"offset": pl.Int64, "type": pl.String})
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    return _with_times(frame.sort("offset") if len(frames) > 1 else frame)


def run_frames(log: EmbeddedLog, run_id: str) -> dict[str, pl.DataFrame]:
    """One frame per output port of run ``run_id`` (its manifest lists them), in order."""
    manifest = read_manifest(log.root, run_id)
    return {out.port: topic_frame(log, out.topic) for out in manifest.outputs}


def journal_frame(log: EmbeddedLog, run_id: str) -> pl.DataFrame:
    """The part of the session journal that run ``run_id`` read."""
    manifest = read_manifest(log.root, run_id)
    return topic_frame(
        log, manifest.journal_topic, start=manifest.journal_start, stop=manifest.journal_stop
    )


@dataclass(frozen=True)
class Exported:
    """One Parquet file written by :func:`export_run`."""

    name: str
    """``journal`` or the run's port."""
    topic: str
    path: Path
    rows: int


def export_run(log: EmbeddedLog, run_id: str, directory: Path) -> list[Exported]:
    """Write ``<directory>/<port>.parquet`` per output port and ``journal.parquet``."""
    manifest = read_manifest(log.root, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    parts = [("journal", manifest.journal_topic, journal_frame(log, run_id))]
    parts += [(out.port, out.topic, topic_frame(log, out.topic)) for out in manifest.outputs]
    for name, topic, frame in parts:
        path = directory / f"{name}.parquet"
        frame.write_parquet(path)
        written.append(Exported(name, topic, path, frame.height))
    return written


# --- fixed-width records -------------------------------------------------------------------------


def _fixed_frame(
    chunks: list[tuple[int, np.ndarray[Any, Any]]], only: int | None
) -> pl.DataFrame | None:
    if not chunks:
        return None
    records = np.concatenate([c for _, c in chunks])
    offsets = np.concatenate([np.arange(b, b + len(c), dtype=np.int64) for b, c in chunks])
    type_ids = records.view(np.uint8).reshape(len(records), -1)[:, :2].copy().view("<u2").ravel()
    if only is not None:
        keep = type_ids == only
        records, offsets, type_ids = records[keep], offsets[keep], type_ids[keep]
        if len(records) == 0:
            return None
    kinds = np.unique(type_ids)
    if len(kinds) == 1:
        dtype = by_id(int(kinds[0])).dtype
    elif records.dtype.itemsize == RECORD_SIZE:
        dtype = MARKET_RECORD  # a journal's mix of market types: the shared layout
    else:
        raise ValueError(f"records of types {kinds.tolist()} share no layout")
    assert dtype is not None
    typed = records.view(dtype)
    names = {int(k): by_id(int(k)).name for k in kinds}
    columns: dict[str, Any] = {
        "offset": offsets,
        "type": pl.Series(type_ids).replace_strict(names, return_dtype=pl.String),
    }
    for field in dtype.names or ():
        if field == "type_id":
            continue
        values = np.ascontiguousarray(typed[field])
        if field == "values" and values.shape[1:] == (N_VALUES,):
            columns.update({n: values[:, i] for i, n in enumerate(FEATURE_NAMES)})
        else:
            columns["cause" if field == "offset" else field] = values
    return pl.DataFrame(columns)


# --- msgpack events ------------------------------------------------------------------------------


def _struct_row(offset: int, event: msgspec.Struct) -> dict[str, Any]:
    return {"offset": offset, "type": type_of(event).name, **_fields(event)}


def _fields(event: msgspec.Struct) -> dict[str, Any]:
    return {
        name: _fields(v) if isinstance(v, msgspec.Struct) else v
        for name, v in msgspec.structs.asdict(event).items()
    }


def _struct_frame(rows: list[dict[str, Any]]) -> pl.DataFrame | None:
    if not rows:
        return None
    frame = pl.from_dicts(rows, infer_schema_length=None)
    return frame.with_columns(pl.col("offset").cast(pl.Int64))


def _with_times(frame: pl.DataFrame) -> pl.DataFrame:
    present = [c for c in TIME_COLUMNS if c in frame.columns]
    return frame.with_columns(pl.col(c).cast(pl.Int64).cast(UTC_NS) for c in present)
