"""``tape query``, ``tape export`` and ``tape db create-reader-role``: analyst access to the
event store and the log (docs/analysts.md, "Querying (read-only)", "DataFrames and Parquet")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from engine.app.cli.db_commands import Db, db_app
from engine.app.cli.root import app, console, context, err_console, fail
from engine.log import LogError
from engine.runtime.manifest import RunError

if TYPE_CHECKING:  # polars and the store load in the commands that use them (fast --help)
    import polars as pl

FORMATS = ("table", "csv", "json", "parquet")
TABLE_ROWS = 50
"""Rows ``--format table`` shows; the rest are counted, not printed."""
TABLE_COLUMNS = 12
CELL_WIDTH = 40


@app.command("query")
def query_command(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="One SQL statement; it may only read.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json or parquet.")
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write to FILE instead of the screen (parquet: required)."
        ),
    ] = None,
    db: Db = None,
) -> None:
    """Run one read-only SQL statement on the event store; writes are refused by the database."""
    from engine.app.store.migrate import StoreError, resolve_url
    from engine.app.store.query import run_query

    if format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format == "parquet" and out is None:
        fail("--format parquet writes a file: give --out FILE.parquet")
    url = resolve_url(context(ctx).data, db)
    try:
        result = run_query(url, sql)
    except StoreError as error:
        fail(str(error))
    frame, seconds = result.frame, result.seconds
    if format == "table":
        if out is not None:
            fail("--format table prints to the screen; use csv, json or parquet with --out")
        console.print(frame_table(frame))
        shown = min(frame.height, TABLE_ROWS)
        more = f", showing the first {shown}" if shown < frame.height else ""
        console.print(
            f"{frame.height} row{'s' * (frame.height != 1)} x {frame.width} columns"
            f"{more} in {seconds:.3f} s"
        )
        return
    _write(frame, format, out)
    if out is not None:
        err_console.print(f"wrote {frame.height} rows x {frame.width} columns to {out} in "
                          f"{seconds:.3f} s")  # fmt: skip


def _write(frame: pl.DataFrame, format: str, out: Path | None) -> None:
    if format == "parquet":
        assert out is not None
        frame.write_parquet(out)
    elif format == "csv":
        text = frame.write_csv()
        _emit(text, out)
    else:
        _emit(frame.write_json() + "\n", out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        out.write_text(text)


def frame_table(frame: pl.DataFrame) -> Table:
    """The first rows and columns of ``frame`` as a rich table, long cells cut short."""
    columns = frame.columns[:TABLE_COLUMNS]
    hidden = frame.width - len(columns)
    caption = f"{hidden} more columns not shown: use --format csv or json" if hidden else None
    table = Table(caption=caption, caption_justify="left")
    for name in columns:
        numeric = frame.schema[name].is_numeric()
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in frame.head(TABLE_ROWS).select(columns).iter_rows():
        table.add_row(*(_cell(v) for v in row))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/]"
    text = str(value).replace("[", r"\[")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 3] + "..."


@app.command("export")
def export_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run to export (see `tape runs`).")],
    directory: Annotated[Path, typer.Argument(help="Directory for the Parquet files.")],
    format: Annotated[str, typer.Option("--format", help="parquet (the only format).")] = "parquet",
) -> None:
    """Write one Parquet file per topic of a run (each port, and the journal it read)."""
    from engine.app.analysis import export_run

    if format != "parquet":
        fail(f"--format must be parquet, not {format!r}")
    log = context(ctx).log
    try:
        written = export_run(log, run_id, directory)
    except (RunError, LogError) as error:
        fail(str(error))
    table = Table(title=f"run {run_id} -> {directory}", title_justify="left")
    for name, justify in (("file", "left"), ("topic", "left"), ("rows", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for item in written:
        table.add_row(item.path.name, item.topic, str(item.rows))
    console.print(table)


@db_app.command("create-reader-role")
def create_reader_role_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Role to create, e.g. tape_reader.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password", help="Password to log in with (omit for trust, peer or cert auth)."
        ),
    ] = None,
    db: Db = None,
) -> None:
    """PostgreSQL: create a login role that may only SELECT from the store's tables."""
    from engine.app.store.migrate import StoreError, resolve_url
    from engine.app.store.roles import create_reader_role

    url = resolve_url(context(ctx).data, db)
    try:
        schema = create_reader_role(url, name, password)
    except StoreError as error:
        fail(str(error))
    console.print(
        f"role {name} created: SELECT on every table of schema {schema} (now and after "
        "migrations), read-only transactions by default"
    )
