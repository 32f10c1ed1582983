"""The ``tape`` command line. Each module registers its commands on the one Typer app."""

from engine.app.cli import analyst_commands as analyst_commands
from engine.app.cli import book_commands as book_commands
from engine.app.cli import cluster_commands as cluster_commands
from engine.app.cli import db_commands as db_commands
from engine.app.cli import demo as demo
from engine.app.cli import ingest_commands as ingest_commands
from engine.app.cli import ingest_vendors as ingest_vendors
from engine.app.cli import live_commands as live_commands
from engine.app.cli import log_commands as log_commands
from engine.app.cli import models_commands as models_commands
from engine.app.cli import monitor_commands as monitor_commands
from engine.app.cli import report_commands as report_commands
from engine.app.cli import run_commands as run_commands
from engine.app.cli import serve_commands as serve_commands
from engine.app.cli import sim_commands as sim_commands
from engine.app.cli import train_commands as train_commands
from engine.app.cli import worker_commands as worker_commands
from engine.app.cli.root import app, err_console
from engine.log import DiskFullError


def main() -> None:
    """Entry point of the ``tape`` script: the app, with the pipelines Tapedeck ships (loaded
    by the first command that needs them, see ``root.Context.pipelines``)."""
    try:
        app()
    except DiskFullError as exc:  # commands that do not say more about it themselves
        err_console.print("[bold red]error:[/]", str(exc).replace("[", "\\["))
        raise SystemExit(1) from None


__all__ = ["app", "main"]
