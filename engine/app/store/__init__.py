"""The event store for analysts: a relational projection of the log (docs/analysts.md).

``schema`` holds the SQLAlchemy models, ``migrate`` applies the Alembic migrations in
``migrations/`` to SQLite (the default, ``<data>/store.sqlite``) or PostgreSQL.
"""
