"""``tape book-check SESSION``: the rebuilt order book against the venue's own."""

from __future__ import annotations

import typer
from rich.table import Table

from engine.app.cli.root import app, console, context, fail


@app.command("book-check")
def book_check(ctx: typer.Context, session: str) -> None:
    """Rebuild SESSION's book and compare it with the source's oracle; exit 1 on a mismatch."""
    from engine.app.bookcheck import CheckError, check_session

    try:
        report = check_session(context(ctx).log, session)
    except CheckError as exc:
        fail(str(exc))
    console.print(f"[bold]book-check {session}[/] against {report.oracle}")
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name in ("compared", "matched", "mismatched", "resynced", "gaps"):
        table.add_row(name, f"{getattr(report, name):,}")
    for reason, count in report.skipped.items():
        table.add_row(f"not compared: {reason}", f"{count:,}")
    for what, count in report.counts.items():
        table.add_row(what, f"{count:,}")
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    if report.first_mismatch is not None:
        console.print("[bold red]first mismatch:[/]")
        for key, value in report.first_mismatch.items():
            console.print(f"  {key}: {value}", markup=False)
    if not report.ok:
        if report.compared == 0:
            fail("nothing was compared", code=1)
        raise typer.Exit(1)
