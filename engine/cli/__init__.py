"""The ``tape`` command line. Each module registers its commands on the one Typer app."""

from engine.cli import analyst_commands as analyst_commands
from engine.cli import book_commands as book_commands
from engine.cli import cluster_commands as cluster_commands
from engine.cli import db_commands as db_commands
from engine.cli import demo as demo
from engine.cli import ingest_commands as ingest_commands
from engine.cli import log_commands as log_commands
from engine.cli import run_commands as run_commands
from engine.cli import train_commands as train_commands
from engine.cli import worker_commands as worker_commands
from engine.cli.app import app


def main() -> None:
    """Entry point of the ``tape`` script."""
    app()


__all__ = ["app", "main"]
