"""A PostgreSQL role that can read the event store and nothing else (``tape db
create-reader-role``; docs/analysts.md, "Querying").

The role may log in, connect to the database, use the store's schema and ``SELECT`` from its
tables, including tables later migrations create (``ALTER DEFAULT PRIVILEGES``); its sessions
default to read-only transactions and to the store's schema on ``search_path``. It owns
nothing and is granted no other privilege, so even outside ``tape query`` it cannot write.
"""

from __future__ import annotations

import re

from sqlalchemy import exc, make_url

from engine.app.store.migrate import StoreError, display, open_engine

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def reader_role_sql(name: str, schema: str, database: str, password: str | None) -> list[str]:
    """The statements that create role ``name`` reading ``schema`` of ``database``.

    ``password`` is spliced in as a quoted literal (PostgreSQL DDL takes no parameters);
    names are quoted identifiers.
    """
    from psycopg import sql

    def ident(value: str) -> str:
        return sql.Identifier(value).as_string()

    role, on_schema = ident(name), ident(schema)
    login = "LOGIN"
    if password is not None:
        login += f" PASSWORD {sql.Literal(password).as_string()}"
    return [
        f"CREATE ROLE {role} {login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT",
        f"GRANT CONNECT ON DATABASE {ident(database)} TO {role}",
        f"GRANT USAGE ON SCHEMA {on_schema} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {on_schema} TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {on_schema} GRANT SELECT ON TABLES TO {role}",
        f"ALTER ROLE {role} SET default_transaction_read_only = on",
        f"ALTER ROLE {role} SET search_path = {on_schema}",
    ]


def create_reader_role(url: str, name: str, password: str | None = None) -> str:
    """Create read-only role ``name`` on the PostgreSQL store at ``url``; returns its schema.

    Run it as the role that owns the store's tables (the one that ran ``tape db upgrade``):
    default privileges apply to tables that role creates later.
    """
    if make_url(url).get_backend_name() != "postgresql":
        raise StoreError(
            "reader roles are for PostgreSQL; an SQLite store has no roles, and tape query "
            "already opens the file read-only"
        )
    if not ROLE_NAME.match(name):
        raise StoreError(
            f"invalid role name {name!r}: use 1-63 characters from a-z 0-9 _, not starting "
            "with a digit"
        )
    engine = open_engine(url)
    try:
        with engine.begin() as connection:
            schema, database = connection.exec_driver_sql(
                "SELECT current_schema(), current_database()"
            ).one()
            if schema is None:
                raise StoreError(
                    f"{display(url)} has no current schema (search_path is empty or names no "
                    "existing schema); run `tape db upgrade` first"
                )
            for statement in reader_role_sql(name, schema, database, password):
                connection.exec_driver_sql(statement)
    except exc.ProgrammingError as error:
        reason = " ".join(str(error.orig or error).split())
        raise StoreError(f"cannot create role {name!r} on {display(url)}: {reason}") from None
    except exc.OperationalError as error:
        reason = " ".join(str(error.orig or error).split())
        raise StoreError(
            f"cannot open the store at {display(url)} ({reason}). Check that the server is "
            "running and the host, port, user and database are right."
        ) from None
    finally:
        engine.dispose()
    return str(schema)
