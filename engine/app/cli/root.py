"""The ``tape`` application object, its global options and how errors reach the user."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from engine.log import EmbeddedLog, FsyncPolicy, LogError

if TYPE_CHECKING:
    from engine.runtime.topology import Catalog

DEFAULT_DATA = Path("tapedata")
DATA_ENV = "TAPE_DATA"
"""Environment variable for ``--data``."""
LOG_ENV = "TAPE_LOG"
"""Environment variable for ``--log`` (a Kafka address) where a command takes one."""
DB_ENV = "TAPE_DB"
"""Environment variable for ``--db`` (the analyst store's URL)."""

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
    """What every command gets: the data directory, the log opened on it, the pipelines.

    This is the composition root's configuration: read from flags and the environment here,
    then passed down explicitly; nothing deeper reads the environment."""

    data: Path
    fsync: FsyncPolicy
    given: Catalog | None = None
    """The pipelines the invoker handed the app, if any (else :attr:`pipelines` is SHIPPED)."""

    @property
    def pipelines(self) -> Catalog:
        """The pipelines commands run, replay and trace (:data:`engine.app.pipelines.SHIPPED`
        unless the invoker gave others). Loaded on first use: building them imports every
        stage (numba, CatBoost, river), which commands that only read the log never need."""
        if self.given is None:
            from engine.app.pipelines import SHIPPED

            self.given = SHIPPED
        return self.given

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
            envvar=DATA_ENV,
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
    # Whoever invokes the app may hand it the pipelines to offer as Click's ``obj`` (a program
    # embedding tape, or a test, its own catalog); otherwise the shipped ones, when needed.
    from engine.runtime.topology import Catalog

    given = ctx.obj if isinstance(ctx.obj, Catalog) else None
    ctx.obj = Context(data or DEFAULT_DATA, policy, given)


def context(ctx: typer.Context) -> Context:
    """The command's :class:`Context`."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj
