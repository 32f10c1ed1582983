"""Read-only SQL over the event store: ``tape query`` (docs/analysts.md, "Querying").

Read-only is enforced by the database, never by looking at the SQL text:

- SQLite: the file is opened with ``mode=ro`` (the OS-level open is read-only), the connection
  sets ``PRAGMA query_only=ON``, and an SQLite authorizer refuses ``ATTACH`` / ``DETACH`` (an
  attached file, or ``VACUUM INTO``, could otherwise create a new file beside the store). The
  driver runs exactly one statement per call.
- PostgreSQL: the statement runs inside ``BEGIN READ ONLY`` with the extended query protocol,
  which the server accepts for exactly one statement, so ``...; COMMIT; DROP ...`` cannot leave
  the read-only transaction; the transaction is always rolled back. A role made with
  :func:`engine.app.store.roles.create_reader_role` adds a second wall: it may only ``SELECT``.

A statement the database refuses as a write raises :class:`ReadOnlyError` ("read-only: ...");
any other failure raises :class:`QueryError`. Results come back as a polars DataFrame.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
from sqlalchemy import exc, make_url

from engine.app.store.migrate import StoreError, display, open_engine

SQLITE_READONLY = 8
SQLITE_AUTH = 23
READ_ONLY_STATES = {"25006", "42501"}
"""SQLSTATEs of a refused write: read-only transaction, insufficient privilege."""


class QueryError(StoreError):
    """The database could not run the query (syntax, unknown table, ...)."""


class ReadOnlyError(QueryError):
    """The database refused the query because it would write, or ran more than one statement."""


@dataclass(frozen=True)
class QueryResult:
    """A query's rows as a DataFrame and how long the database took (execute + fetch)."""

    frame: pl.DataFrame
    seconds: float


def run_query(url: str, sql: str) -> QueryResult:
    """Run one SQL statement read-only against the store at ``url``."""
    backend = _backend(url)
    started = time.perf_counter()
    if backend == "sqlite":
        names, rows = _sqlite(url, sql)
    elif backend == "postgresql":
        names, rows = _postgres(url, sql)
    else:
        raise StoreError(
            f"tape query supports SQLite and PostgreSQL stores, not {backend!r} ({display(url)})"
        )
    frame = to_frame(names, rows)
    return QueryResult(frame, time.perf_counter() - started)


def to_frame(names: list[str], rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """A DataFrame of DB-API rows; repeated column names get ``_1``, ``_2`` suffixes."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count}")
    if not rows:
        return pl.DataFrame({name: [] for name in unique})
    # Column by column is twice as fast as orient="row"; strict=False widens mixed columns
    # (SQLite's dynamic types) to their supertype instead of failing.
    columns = zip(*rows, strict=True)
    return pl.DataFrame(
        [pl.Series(n, c, strict=False) for n, c in zip(unique, columns, strict=True)]
    )


def _backend(url: str) -> str:
    try:
        return make_url(url).get_backend_name()
    except exc.ArgumentError as error:
        raise StoreError(
            f"bad database URL {display(url)!r}: {error}. Use sqlite:///PATH/store.sqlite or "
            "postgresql+psycopg://USER@HOST:5432/DATABASE (--db or TAPE_DB)."
        ) from None


# --- SQLite --------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    """The file of an ``sqlite:///PATH`` URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise StoreError(f"{display(url)} is not an SQLite file; tape query needs a store file")
    return Path(database)


def _deny_attach(action: int, *_: object) -> int:
    # ATTACH would open (and create) another file; VACUUM INTO attaches its target first.
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def open_sqlite_read_only(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` that the database itself keeps read-only."""
    if not path.is_file():
        raise StoreError(
            f"no store at {path}: create it with `tape db upgrade` and fill it with "
            "`tape project`, or give --db / TAPE_DB"
        )
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    connection.execute("PRAGMA query_only=ON")
    connection.set_authorizer(_deny_attach)
    return connection


def _sqlite(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    connection = open_sqlite_read_only(sqlite_path(url))
    try:
        cursor = connection.execute(sql)
        rows = cursor.fetchall()
        names = [d[0] for d in cursor.description or ()]
    except sqlite3.ProgrammingError as error:
        raise ReadOnlyError(f"read-only: tape query runs exactly one statement ({error})") from None
    except sqlite3.DatabaseError as error:
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code in (SQLITE_READONLY, SQLITE_AUTH):
            raise ReadOnlyError(f"read-only: the store refused to change ({error})") from None
        raise QueryError(f"query failed: {error}") from None
    finally:
        connection.close()
    return names, rows


# --- PostgreSQL ----------------------------------------------------------------------------------


def _postgres(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    import psycopg

    engine = open_engine(url)
    try:
        raw = engine.raw_connection()
    except Exception as error:
        engine.dispose()
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        raise StoreError(
            f"cannot open the store at {display(url)} ({reason}). Check that the server is "
            "running and the host, port, user and database are right."
        ) from None
    connection = raw.driver_connection
    assert isinstance(connection, psycopg.Connection)
    try:
        connection.rollback()
        connection.read_only = True  # every transaction starts with BEGIN READ ONLY
        with connection.cursor() as cursor:
            # prepare=True: the extended protocol, which runs exactly one statement.
            cursor.execute(sql, prepare=True)
            rows = cursor.fetchall() if cursor.description else []
            names = [c.name for c in cursor.description or ()]
    except psycopg.Error as error:
        connection.rollback()
        raise _postgres_error(error) from None
    finally:
        if not connection.closed:
            connection.rollback()
        raw.close()
        engine.dispose()
    return names, rows


def _postgres_error(error: Exception) -> QueryError:
    import psycopg

    state = error.sqlstate if isinstance(error, psycopg.Error) else None
    message = " ".join(str(error).split())
    if state in READ_ONLY_STATES:
        return ReadOnlyError(f"read-only: the store refused to change ({message})")
    if state == "42601" and "multiple commands" in message:
        return ReadOnlyError(f"read-only: tape query runs exactly one statement ({message})")
    return QueryError(f"query failed: {message}")
