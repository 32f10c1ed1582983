"""``tape report RUN [--plot FILE]``: a run's trading report, and its plot as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.app.cli.model_options import Models
from engine.app.cli.root import app, console, context, fail
from engine.models import ModelStoreError
from engine.runtime import RunError


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
    # the stages, matplotlib and the run readers load only for this command (fast --help)
    from engine.app.cli.trading_report import print_trading_report
    from engine.app.plots import PlotError, write_plot
    from engine.app.runview import open_run
    from engine.app.runview.report import stored_report, windows

    log = context(ctx).log
    try:
        run = open_run(log, run_id, models)
    except (RunError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    m = run.manifest
    report = stored_report(m)
    if report is not None:
        print_trading_report(console, m, run.instrument)
    else:
        console.print(f"run {run_id} ({m.pipeline} pipeline) does not trade: no trading report")
    if plot is None:
        return
    try:
        written = write_plot(run, plot, None if report is None else windows(report, run.instrument))
    except (PlotError, OSError) as exc:
        fail(str(exc))
    console.print(f"plot written to {written}")
