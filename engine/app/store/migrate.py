"""Create and upgrade the event store's schema with Alembic, from code.

``upgrade(url)`` applies every migration in ``migrations/`` up to the head (a no-op when the
database is already there) and ``current(url)`` says which revision a database is at. URLs are
SQLAlchemy URLs: ``sqlite:///path/store.sqlite`` or ``postgresql+psycopg://user@host:5432/db``.
Failures raise :class:`StoreError` with what went wrong, where and what to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, exc, make_url, pool

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
"""The Alembic script directory (``env.py`` and ``versions/``)."""

STORE_FILE = "store.sqlite"
"""Name of the default SQLite store inside the data directory."""


class StoreError(Exception):
    """The store cannot be reached or migrated; the message says why and what to do."""


def default_url(data: Path) -> str:
    """The SQLite store in data directory ``data``."""
    return f"sqlite:///{(data / STORE_FILE).resolve()}"


def resolve_url(data: Path, db: str | None) -> str:
    """The store URL a command uses: ``db`` if given (``--db``, or ``TAPE_DB`` read by the CLI),
    else the SQLite file of the data directory."""
    return db or default_url(data)


def display(url: str) -> str:
    """``url`` with any password masked, fit for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return url


def config() -> Config:
    """An Alembic config on ``migrations/`` (no ``alembic.ini`` needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The newest revision in ``migrations/versions``."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None, f"no migration in {MIGRATIONS / 'versions'}"
    return revision


def open_engine(url: str) -> Engine:
    """An engine on ``url``, or :class:`StoreError` if the URL is not usable."""
    try:
        return create_engine(url, poolclass=pool.NullPool)
    except (exc.ArgumentError, exc.NoSuchModuleError, ValueError) as error:
        raise StoreError(
            f"bad database URL {display(url)!r}: {error}. Use sqlite:///PATH/store.sqlite or "
            "postgresql+psycopg://USER@HOST:5432/DATABASE (--db or TAPE_DB)."
        ) from None


def upgrade(url: str, revision: str = "head") -> str | None:
    """Apply the migrations to ``revision`` (default: the head); returns the revision reached."""
    engine = open_engine(url)
    cfg = config()
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    except exc.OperationalError as error:
        raise _unreachable(url, error) from None
    finally:
        engine.dispose()
    return current(url)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` if it was never migrated."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except exc.OperationalError as error:
        raise _unreachable(url, error) from None
    finally:
        engine.dispose()


def _unreachable(url: str, error: exc.OperationalError) -> StoreError:
    reason = " ".join(str(error.orig or error).split())
    if make_url(url).get_backend_name() == "sqlite":
        hint = "Check that the directory exists and is writable"
    else:
        hint = "Check that the server is running and the host, port, user and database are right"
    return StoreError(f"cannot open the store at {display(url)} ({reason}). {hint}.")
