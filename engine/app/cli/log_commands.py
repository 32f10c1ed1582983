"""``tape topics | dump | tail | stats | verify``: looking at what is in the log."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from engine.app.cli.render import decoded, format_ns, records_table, to_json_line
from engine.app.cli.root import app, console, context, fail
from engine.events import UnknownEventError, by_id
from engine.events.catalogue import is_msgpack
from engine.log import (
    Batch,
    Consumer,
    EmbeddedLog,
    FixedBatch,
    LogError,
    PartitionReader,
    Record,
    TopicPartition,
    records_of,
)

Partition = Annotated[int, typer.Option("--partition", "-p", help="Partition number.")]
Format = Annotated[str, typer.Option("--format", help="table or json (one object per line).")]


def _open(ctx: typer.Context) -> EmbeddedLog:
    log = context(ctx).log
    if not log.root.is_dir():
        fail(
            f"data directory {log.root} does not exist. Ingest a session first "
            "(`tape demo` does), or point --data / TAPE_DATA at an existing one."
        )
    return log


def _reader(log: EmbeddedLog, topic: str, partition: int) -> PartitionReader:
    try:
        return log.reader(topic, partition)
    except LogError as exc:
        fail(str(exc))


@app.command()
def topics(ctx: typer.Context) -> None:
    """List the topics: partitions, codec, schema, records and bytes."""
    log = _open(ctx)
    table = Table(title=f"topics in {log.root}", title_justify="left")
    for col in ("topic", "partitions", "codec", "schema", "records", "bytes"):
        table.add_column(
            col, justify="right" if col in {"partitions", "records", "bytes"} else "left"
        )
    for name in log.topics():
        config = log.config(name)
        readers = [log.reader(name, p) for p in range(config.partitions)]
        table.add_row(
            name,
            str(config.partitions),
            config.codec.value,
            f"{config.schema_name}@{config.schema_version}",
            f"{sum(r.end_offset - r.start_offset for r in readers):,}",
            f"{sum(r.size_bytes for r in readers):,}",
        )
    console.print(table)


@app.command()
def dump(
    ctx: typer.Context,
    topic: str,
    partition: Partition = 0,
    from_offset: Annotated[int, typer.Option("--from", help="First offset to show.")] = 0,
    limit: Annotated[int, typer.Option(help="How many records to show.")] = 20,
    fmt: Format = "table",
) -> None:
    """Show records of TOPIC decoded through the event catalogue."""
    if fmt not in {"table", "json"}:
        fail(f"--format must be table or json, got {fmt!r}")
    log = _open(ctx)
    reader = _reader(log, topic, partition)
    if not reader.start_offset <= from_offset <= reader.end_offset:
        fail(
            f"{topic}/{partition} holds offsets {reader.start_offset}..{reader.end_offset - 1}; "
            f"--from {from_offset} is outside them"
        )
    stop = min(from_offset + limit, reader.end_offset)
    shown: list[Record] = [
        r for batch in _checked_batches(reader, from_offset, stop) for r in records_of(batch)
    ]
    if fmt == "json":
        for record in shown:
            console.print(to_json_line(decoded(record)), soft_wrap=True, markup=False)
    else:
        title = f"{topic}/{partition} offsets {from_offset}.. ({reader.end_offset:,} records)"
        console.print(records_table(shown, title))


@app.command()
def tail(
    ctx: typer.Context,
    topic: str,
    partition: Partition = 0,
    from_offset: Annotated[
        int | None, typer.Option("--from", help="Start here instead of at the end.")
    ] = None,
    fmt: Format = "json",
    idle_exit: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds without new records (default: never)."),
    ] = None,
) -> None:
    """Follow TOPIC: print records as they are appended, until interrupted."""
    log = _open(ctx)
    reader = _reader(log, topic, partition)
    start = reader.end_offset if from_offset is None else from_offset
    consumer = Consumer(log)
    consumer.assign([TopicPartition(topic, partition, start)])
    last_seen = time.monotonic()
    try:
        while True:
            batch = consumer.poll_batch(1000, timeout=0.2)
            if batch is None:
                if idle_exit is not None and time.monotonic() - last_seen >= idle_exit:
                    return
                continue
            last_seen = time.monotonic()
            records = records_of(batch)
            if fmt == "json":
                for record in records:
                    console.print(to_json_line(decoded(record)), soft_wrap=True, markup=False)
            else:
                console.print(records_table(records, f"{topic}/{partition}"))
    except KeyboardInterrupt:
        return


@app.command()
def stats(ctx: typer.Context, topic: str, partition: Partition = 0) -> None:
    """Records, bytes, event-time range and rate of TOPIC, with counts per event type."""
    log = _open(ctx)
    reader = _reader(log, topic, partition)
    types: Counter[str] = Counter()
    lo, hi = None, None
    for batch in _checked_batches(reader):
        stamps = batch.timestamps
        if len(stamps):
            lo = int(stamps.min()) if lo is None else min(lo, int(stamps.min()))
            hi = int(stamps.max()) if hi is None else max(hi, int(stamps.max()))
        types.update(_type_counts(batch))
    records = reader.end_offset - reader.start_offset
    table = Table(title=f"{topic}/{partition}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("records", f"{records:,}")
    table.add_row("offsets", f"{reader.start_offset}..{reader.end_offset - 1}")
    table.add_row("bytes", f"{reader.size_bytes:,}")
    if lo is not None and hi is not None:
        span = (hi - lo) / 1e9
        table.add_row("first time", format_ns(lo))
        table.add_row("last time", format_ns(hi))
        table.add_row("span", f"{span:,.3f} s")
        table.add_row("rate", f"{records / span:,.1f} records/s" if span > 0 else "n/a")
    for name, count in sorted(types.items()):
        table.add_row(f"  {name}", f"{count:,}")
    console.print(table)


@app.command()
def verify(ctx: typer.Context, topic: str, partition: Partition = 0) -> None:
    """Check the CRC32C of every batch of TOPIC; exit 1 naming the first corrupt one."""
    records, size = verified(_open(ctx), topic, partition)
    console.print(f"{topic}/{partition}: {records:,} records intact ({size:,} bytes)")


def verified(log: EmbeddedLog, topic: str, partition: int = 0) -> tuple[int, int]:
    """Read every batch of a topic, checking its CRC32C (exit 1 at the first corrupt one);
    its records and bytes."""
    reader = _reader(log, topic, partition)
    for _ in _checked_batches(reader):
        pass
    return reader.end_offset - reader.start_offset, reader.size_bytes


def _checked_batches(
    reader: PartitionReader, start: int | None = None, stop: int | None = None
) -> Iterator[Batch]:
    """The partition's batches (all, or offsets ``start..stop``), each CRC-checked as it is
    read; a corrupt one ends the command with its error."""
    try:
        yield from reader.batches(start, stop, 1 << 20)
    except LogError as exc:
        fail(str(exc), code=1)


def _type_counts(batch: Any) -> Counter[str]:
    if isinstance(batch, FixedBatch):
        ids = batch.records.view(np.uint8).reshape(len(batch), -1)[:, :2].copy().view("<u2")
        values, counts = np.unique(ids, return_counts=True)
        return Counter(
            {_type_name_of_id(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        )
    names: Counter[str] = Counter()
    for value in batch.values():
        names[_type_name_of_value(value)] += 1
    return names


def _type_name_of_id(type_id: int) -> str:
    try:
        return by_id(type_id).qualified_name
    except UnknownEventError:
        return f"unknown id {type_id}"


def _type_name_of_value(value: bytes) -> str:
    if is_msgpack(value) and len(value) > 1:
        return _type_name_of_id(value[1])
    return "not a catalogue event"
