"""The ``tape`` application object, its global options and how errors reach the user."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from engine.log import EmbeddedLog, FsyncPolicy, LogError

DEFAULT_DATA = Path("tapedata")

app = typer.Typer(
    name="tape",
    help="Tapedeck: an event-sourced trading engine. Every event is in a log; replay is exact.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Piped output is read in files and CI logs, where rich's 80-column default wraps tables.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


@dataclass
class Context:
    """What every command gets: the data directory and the log opened on it."""

    data: Path
    fsync: FsyncPolicy

    @property
    def log(self) -> EmbeddedLog:
        """The embedded log of the data directory."""
        return EmbeddedLog(self.data, self.fsync)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error for the user and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.callback()
def _global(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            envvar="TAPE_DATA",
            help="Data directory holding the log (default ./tapedata).",
            show_default=False,
        ),
    ] = None,
    fsync: Annotated[
        str,
        typer.Option(help="Durability of appends: batch, interval[:MS] or never."),
    ] = "batch",
) -> None:
    try:
        policy = FsyncPolicy.parse(fsync)
    except LogError as exc:
        fail(str(exc))
    ctx.obj = Context(data or Path(os.environ.get("TAPE_DATA") or DEFAULT_DATA), policy)


def context(ctx: typer.Context) -> Context:
    """The command's :class:`Context`."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj
