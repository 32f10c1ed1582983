"""Deferred indexes: a big first load into an empty PostgreSQL table builds its secondary
indexes once at the end instead of updating them row by row.

Only the non-unique indexes (``ix_<table>_...``: ``(run_id, cause)``, ``(run_id, ts_event)``,
``(session, ts_event)``...) are deferred; primary keys and unique indexes stay, so a duplicate
row is refused as always. If the projector dies between dropping and re-creating them, the
rows it committed are fine but the indexes are missing: every projection starts by creating
any non-unique index of the schema that the database lacks (:func:`repair`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from engine.app.store.schema import Base

DEFER_ROWS = 20_000
"""A first load of at least this many log records into an empty table defers its indexes."""


def deferrable(table: str) -> list[sa.Index]:
    """The non-unique indexes of ``table``, sorted by name."""
    indexes = Base.metadata.tables[table].indexes
    return sorted((i for i in indexes if not i.unique), key=lambda i: str(i.name))


def present(connection: Connection) -> set[str]:
    """Names of the indexes in the store's schema (PostgreSQL: ``current_schema()``)."""
    sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    return set(connection.execute(sa.text(sql)).scalars())


def repair(connection: Connection) -> list[str]:
    """Create every non-unique index the schema declares and the database lacks (left so by a
    projection that died during a deferred load); returns their names."""
    have = present(connection)
    made = []
    for table in Base.metadata.tables:
        for index in deferrable(table):
            if index.name not in have:
                index.create(connection)
                made.append(str(index.name))
    return made


def is_empty(connection: Connection, table: str) -> bool:
    """Whether ``table`` has no row."""
    sql = sa.select(sa.literal(1)).select_from(Base.metadata.tables[table]).limit(1)
    return connection.execute(sql).first() is None


def drop(connection: Connection, tables: list[str]) -> None:
    """Drop the non-unique indexes of ``tables``."""
    for table in tables:
        for index in deferrable(table):
            index.drop(connection)


def create(connection: Connection, tables: list[str]) -> None:
    """Create the non-unique indexes of ``tables``."""
    for table in tables:
        for index in deferrable(table):
            index.create(connection)
