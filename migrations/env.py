"""Alembic environment of the event store.

The database URL comes from the caller, in this order: a connection handed over in
``config.attributes["connection"]`` (what :mod:`engine.app.store.migrate` does), a URL in
``config.attributes["url"]``, ``sqlalchemy.url`` of the Alembic config (``alembic -x`` users
set it in ``alembic.ini`` or with ``-x db=URL``), then the ``TAPE_DB`` environment variable.
Nothing is hard-coded. The target metadata is :data:`engine.app.store.schema.Base.metadata`.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from engine.app.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("db")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("TAPE_DB")
    )
    if not url:
        raise RuntimeError(
            "no database URL: pass -x db=URL, set sqlalchemy.url or TAPE_DB "
            "(e.g. sqlite:///tapedata/store.sqlite), or use `tape db upgrade`"
        )
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode lets later revisions do that.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit the SQL to stdout (``alembic upgrade --sql``) instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the caller's connection, or on one opened from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
