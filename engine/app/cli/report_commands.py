"""``tape report RUN [--plot FILE]``: a run's trading report, and its plot as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer

from engine.app.cli.model_options import Models
from engine.app.cli.root import app, console, context, fail
from engine.app.cli.run_commands import print_trading_report
from engine.app.plots import PlotError, write_plot
from engine.app.runview import open_run
from engine.models import ModelStoreError
from engine.runtime import RunError
from streams.trading.report import Report, report_rows


@app.command("report")
def report_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run (see `tape runs`).")],
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Also draw price with fills, equity and drawdown, and feature drift into "
            "FILE (.png, .svg or .html)."
        ),
    ] = None,
    models: Models = None,
) -> None:
    """Print a run's trading report; with --plot, draw it into a file."""
    log = context(ctx).log
    try:
        run = open_run(log, run_id, models)
    except (RunError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    m = run.manifest
    if "trading" in m.report:
        print_trading_report(m, run.instrument)
    else:
        console.print(f"run {run_id} ({m.pipeline} pipeline) does not trade: no trading report")
    if plot is None:
        return
    rows = None
    if "trading" in m.report:
        report = msgspec.convert(m.report["trading"], Report)
        rows = report_rows(report, run.instrument.currency, run.instrument.size_scale)
    try:
        written = write_plot(run, plot, rows)
    except (PlotError, OSError) as exc:
        fail(str(exc))
    console.print(f"plot written to {written}")
