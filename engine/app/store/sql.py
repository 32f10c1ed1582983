"""The projector's SQL: bulk appends (COPY or executemany) and its committed positions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from engine.app.store import pgcopy
from engine.app.store.migrate import StoreError
from engine.app.store.rows import COLUMNS, Part, Row, part_rows
from engine.app.store.schema import Base

_OFFSETS = Base.metadata.tables["consumer_offsets"]


def _pg_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.BigInteger):
        return "int8"
    if isinstance(kind, sa.Integer):
        return "int4"
    if isinstance(kind, sa.Double):
        return "float8"
    # String(n) is varchar(n): text on the wire, the server checks the length.
    assert isinstance(kind, sa.String), f"{column}: no COPY type for {kind!r}"
    return "text"


PG_TYPES = {
    name: [_pg_type(c) for c in table.columns] for name, table in Base.metadata.tables.items()
}
"""PostgreSQL wire type of every column, for binary COPY."""


class ProjectError(StoreError):
    """What was asked cannot be projected; the message says why and what to do."""


def move(connection: Connection, key: tuple[str, str, int], before: int | None, after: int) -> None:
    """Set the group's position; refuse if someone else moved it since we read it."""
    group, topic, partition = key
    if before is None:
        connection.execute(
            sa.insert(_OFFSETS),
            [
                {
                    "consumer_group": group,
                    "topic": topic,
                    "partition": partition,
                    "next_offset": after,
                }
            ],
        )
        return
    moved = connection.execute(
        sa.update(_OFFSETS)
        .where(
            _OFFSETS.c.consumer_group == group,
            _OFFSETS.c.topic == topic,
            _OFFSETS.c.partition == partition,
            _OFFSETS.c.next_offset == before,
        )
        .values(next_offset=after)
    )
    if moved.rowcount != 1:
        raise ProjectError(
            f"the committed position of {group} in {topic}/{partition} is no longer {before}: "
            "another projector is writing to this store; run one `tape project` per store"
        )


def new_instruments(connection: Connection, rows: list[Row]) -> list[Row]:
    """The instrument rows whose (venue, symbol) the store does not have yet: the first session
    announcing an instrument defines it."""
    names = COLUMNS["instruments"]
    venue, symbol = names.index("venue"), names.index("symbol")
    table = sa.table("instruments", sa.column("venue"), sa.column("symbol"))
    seen = {tuple(r) for r in connection.execute(sa.select(table.c.venue, table.c.symbol))}
    out = []
    for row in rows:
        key = (row[venue], row[symbol])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def write(connection: Connection, table: str, parts: list[Part]) -> int:
    """Append ``parts`` (frames or row tuples in the table's column order) inside the caller's
    transaction: binary ``COPY`` on PostgreSQL, ``executemany`` elsewhere; returns the rows."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return 0
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in COLUMNS[table])
    driver = connection.connection.driver_connection
    assert driver is not None
    if connection.dialect.name == "postgresql":
        sql = f"COPY {quote(table)} ({columns}) FROM STDIN (FORMAT BINARY)"
        payloads = [pgcopy.encoded(p, PG_TYPES[table]) for p in parts if not isinstance(p, list)]
        rows = [r for p in parts if isinstance(p, list) for r in p]
        with driver.cursor() as cursor:
            if payloads:
                # The whole payload built with numpy (engine.app.store.pgcopy), sent as is.
                with cursor.copy(sql) as copy:
                    copy.write(pgcopy.HEADER)
                    for payload in payloads:
                        copy.write(payload.payload)
                    copy.write(pgcopy.TRAILER)
            if rows:
                with cursor.copy(sql) as copy:
                    # Decoded events (low rate): psycopg dumps each value in C, typed.
                    copy.set_types(PG_TYPES[table])
                    for row in rows:
                        copy.write_row(row)
        return sum(len(p) for p in parts)
    marks = ", ".join("?" for _ in COLUMNS[table])
    values = [r for p in parts for r in part_rows(p)]
    # The DB-API cursor of the same connection, inside the same transaction; SQLAlchemy's
    # executemany would inspect every row first.
    driver.executemany(f"INSERT INTO {quote(table)} ({columns}) VALUES ({marks})", values)
    return len(values)
