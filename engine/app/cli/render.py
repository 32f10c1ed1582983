"""Turning records into what people read: decoded fields, readable times, tables and JSON."""

from __future__ import annotations

from typing import Any

import msgspec
from rich.table import Table

from engine.app.text import format_ns as format_ns
from engine.events import UnknownEventError, to_dict
from engine.log import Record


def decoded(record: Record) -> dict[str, Any]:
    """A record with its value decoded through the catalogue (hex if it is not an event)."""
    out: dict[str, Any] = {
        "offset": record.offset,
        "timestamp": record.timestamp,
    }
    if record.key is not None:
        out["key"] = record.key.decode(errors="backslashreplace")
    if record.headers:
        out["headers"] = {k: v.decode(errors="backslashreplace") for k, v in record.headers}
    try:
        out.update(to_dict(record.value))
    except UnknownEventError as exc:
        out["type"] = "?"
        out["value_hex"] = record.value.hex()
        out["error"] = str(exc)
    return out


def to_json_line(row: dict[str, Any]) -> str:
    """One JSON object per line, keys in a stable order."""
    return msgspec.json.encode(row).decode()


def records_table(records: list[Record], title: str) -> Table:
    """A table: offset, event time, type, then the event's own fields as ``name=value``."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("offset", justify="right", style="cyan")
    table.add_column("time (UTC)", style="green", no_wrap=True)
    table.add_column("type", style="bold")
    table.add_column("fields")
    for record in records:
        row = decoded(record)
        ts = row.pop("ts_event", record.timestamp)
        fields = {
            k: v for k, v in row.items() if k not in {"offset", "timestamp", "type", "ts_recv"}
        }
        table.add_row(
            str(record.offset),
            format_ns(int(ts)),
            str(row["type"]),
            " ".join(f"{k}={_short(v)}" for k, v in fields.items()),
        )
    return table


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_short(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."
