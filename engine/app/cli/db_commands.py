"""``tape db upgrade`` creates or upgrades the event store's SQL schema; ``tape project``
fills it from the log (docs/analysts.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from engine.app.cli.root import DB_ENV, app, console, context, fail

if TYPE_CHECKING:  # the store loads SQLAlchemy and Alembic: only the commands that use it do
    from engine.app.store.projector import Progress

PROJECT_BATCH = 65536
"""Default ``--batch`` of ``tape project``: ``engine.app.store.projector.DEFAULT_BATCH``,
written out so that ``tape --help`` does not load the store (a unit test keeps them equal)."""

db_app = typer.Typer(help="The SQL event store for analysts.", no_args_is_help=True)
app.add_typer(db_app, name="db")

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=DB_ENV,
        help="Store URL, e.g. postgresql+psycopg://USER@HOST:5432/DB "
        "(default: sqlite file store.sqlite in the data directory).",
        show_default=False,
    ),
]


@db_app.command("upgrade")
def upgrade_command(ctx: typer.Context, db: Db = None) -> None:
    """Create the store's tables, or migrate them to the newest schema (a no-op if there)."""
    from engine.app.store.migrate import StoreError, current, default_url, display, head, upgrade

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


@app.command("project")
def project_command(
    ctx: typer.Context,
    run: Annotated[
        str | None, typer.Argument(help="Run to project, with its session's journal.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every session's journal and every run.")
    ] = False,
    session: Annotated[
        str | None, typer.Option(help="One session's journal and every run of it.")
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep projecting as topics grow, until interrupted.")
    ] = False,
    book_deltas: Annotated[
        bool,
        typer.Option("--book-deltas", help="Also project raw book changes into book_deltas."),
    ] = False,
    batch: Annotated[
        int, typer.Option(help="Log records per database transaction.", min=1)
    ] = PROJECT_BATCH,
    db: Db = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Project the log into the SQL store: rows per table, exactly once (docs/analysts.md)."""
    from engine.app.store.migrate import StoreError, display, resolve_url
    from engine.app.store.projector import Progress, Projector, Scope, resolve

    if sum((run is not None, all_, session is not None)) != 1:
        fail("name what to project: a RUN, --session NAME or --all")
    scope = Scope(run=run, session=session)
    data = context(ctx).data
    url = resolve_url(data, db)
    try:
        projector = Projector(context(ctx).log, url, book_deltas=book_deltas, batch=batch)
        resolve(projector.log, scope)
    except StoreError as error:
        fail(str(error))
    console.print(f"projecting {scope.describe()} into {display(url)}")
    total = Progress()
    try:
        with _bar(quiet) as update:
            if follow:
                for step in projector.follow(scope, update):
                    _accumulate(total, step)
            else:
                total = projector.project(scope, update)
    except KeyboardInterrupt:
        console.print("interrupted: every committed batch is in the store")
    except StoreError as error:
        fail(str(error))
    finally:
        projector.close()
    _report(total)


@contextmanager
def _bar(quiet: bool) -> Iterator[Callable[[Progress], None]]:
    bar = RichProgress(
        TextColumn("[bold]project"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("log records, {task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    task = bar.add_task("project", total=None, rows=0)

    def update(p: Progress) -> None:
        bar.update(task, completed=p.records, total=p.total, rows=p.row_count)

    with bar:
        yield update


def _accumulate(total: Progress, step: Progress) -> None:
    total.records += step.records
    total.seconds += step.seconds
    for table, n in step.rows.items():
        total.add(table, n)


def _report(progress: Progress) -> None:
    table = Table("table", "rows", box=None)
    for name, n in sorted(progress.rows.items()):
        table.add_row(name, f"{n:,}")
    console.print(table)
    rate = progress.row_count / progress.seconds if progress.seconds > 0 else 0.0
    console.print(
        f"{progress.row_count:,} rows from {progress.records:,} log records in "
        f"{progress.seconds:.2f} s ({rate:,.0f} rows/s)"
    )
