"""``tape db upgrade``: create or upgrade the event store's SQL schema (docs/analysts.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.app import app, console, context, fail
from engine.store.migrate import StoreError, current, default_url, display, head, upgrade

db_app = typer.Typer(help="The SQL event store for analysts.", no_args_is_help=True)
app.add_typer(db_app, name="db")

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TAPE_DB",
        help="Store URL, e.g. postgresql+psycopg://USER@HOST:5432/DB "
        "(default: sqlite file store.sqlite in the data directory).",
        show_default=False,
    ),
]


@db_app.command("upgrade")
def upgrade_command(ctx: typer.Context, db: Db = None) -> None:
    """Create the store's tables, or migrate them to the newest schema (a no-op if there)."""
    url = db
    if url is None:
        data = context(ctx).data
        data.mkdir(parents=True, exist_ok=True)
        url = default_url(data)
    try:
        before = current(url)
        reached = upgrade(url)
    except StoreError as error:
        fail(str(error))
    if before == reached:
        console.print(f"store {display(url)} already at revision {reached} (head {head()})")
    else:
        console.print(
            f"store {display(url)} upgraded from {before or 'empty'} to revision {reached}"
        )
