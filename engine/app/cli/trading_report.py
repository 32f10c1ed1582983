"""The trading report on the terminal (``tape run``, ``tape report``): the out-of-sample
window first, beside its three baselines, then each bundle's own window (walk-forward folds,
promotions), and any in-sample figures labelled as such (engine/app/runview/report.py)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from engine.app.runview.report import (
    BEATS_COLUMNS,
    WindowText,
    bundle_rows,
    stored_report,
    windows,
)
from engine.events.control import InstrumentSpec
from engine.runtime.manifest import RunManifest


def print_trading_report(
    console: Console, manifest: RunManifest, instrument: InstrumentSpec
) -> None:
    """The run's trading report, when its pipeline trades (see the module docstring)."""
    report = stored_report(manifest)
    if report is None:
        return
    console.print(f"trading report of {manifest.run_id}: {report.basis}")
    if report.out_of_sample is None:
        console.print("[bold]no out-of-sample window[/]: every prediction was in sample")
    parts = windows(report, instrument)
    if report.out_of_sample is not None:
        _window(console, parts.pop(0))
    if report.bundles:
        unit = f" {instrument.currency}" if instrument.currency else ""
        table = Table(
            title="out of sample, per bundle in effect (each beside its baselines)",
            title_justify="left",
        )
        for column in ("bundle", "window", "trips", "net PnL", "buy & hold", "random median",
                       "beats"):  # fmt: skip
            table.add_column(column, justify="left" if column in ("bundle", "window") else "right")
        for row in bundle_rows(report, unit):
            table.add_row(*row)
        console.print(table)
        console.print(BEATS_COLUMNS)
    for part in parts:
        _window(console, part)


def _window(console: Console, part: WindowText) -> None:
    table = Table(title=part.title, title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    for label, value in part.account:
        table.add_row(label, value)
    console.print(table)
    if part.baselines is not None:
        beside = Table(
            title="beside the baselines over the same window, net of the same fees",
            title_justify="left",
        )
        for column in ("", "net PnL", "beaten by the strategy?"):
            beside.add_column(column, justify="left" if not column else "right")
        for row in part.baselines:
            beside.add_row(*row)
        console.print(beside)
    console.print(part.note)
