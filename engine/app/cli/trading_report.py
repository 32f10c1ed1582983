"""The trading report as people read it: the out-of-sample window first, beside its three
baselines, then each bundle's own window (walk-forward folds, promotions), and any in-sample
figures labelled as such (docs/trading.md, "Out of sample, or labelled")."""

from __future__ import annotations

import msgspec
from rich.console import Console
from rich.table import Table

from engine.app.cli.render import format_ns
from engine.events.control import InstrumentSpec
from engine.runtime.manifest import RunManifest
from streams.trading.baselines import Baselines
from streams.trading.evaluation import TradingReport, WindowReport
from streams.trading.report import report_rows

NOT_EVIDENCE = "IN SAMPLE - not evidence: the models were fitted on this period"


def stored_report(manifest: RunManifest) -> TradingReport | None:
    """The trading report a run's manifest stores, if its pipeline trades."""
    raw = manifest.report.get("trading")
    return None if raw is None else msgspec.convert(raw, TradingReport)


def _span(part: WindowReport) -> str:
    w = part.window
    offsets = ", ".join(f"{a:,}..{b - 1:,}" for a, b in w.intervals)
    when = f"{format_ns(w.first_ts)} .. {format_ns(w.last_ts)}" if w.last_ts else "no state"
    return f"journal offsets {offsets} ({when})"


def _money(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:+,.2f}{unit}"


def _verdict(beats: bool | None) -> str:
    return "n/a" if beats is None else ("yes" if beats else "no")


def baseline_rows(b: Baselines, unit: str, size_scale: int = 0) -> list[tuple[str, str, str]]:
    """(what, net PnL, beaten?) for the strategy and each baseline; sizes in the instrument's
    units (``size_scale`` decimal places)."""
    share = "" if b.random_beaten_share is None else f" ({b.random_beaten_share:.0%} of draws)"
    size = b.buy_and_hold_size / 10**size_scale
    return [
        ("the strategy", _money(b.strategy, unit), ""),
        ("no trade", _money(b.no_trade, unit), _verdict(b.beats_no_trade)),
        (
            f"buy and hold ({size:,.{size_scale}f})",
            _money(b.buy_and_hold, unit),
            _verdict(b.beats_buy_and_hold),
        ),
        (
            f"random entry (median of {b.random_draws})",
            _money(b.random_median, unit),
            _verdict(b.beats_random) + share,
        ),
    ]


def random_note(b: Baselines) -> str:
    """What the random-entry baseline drew, in one line."""
    spread = (
        ""
        if b.random_p05 is None
        else f"; 5-95%: {_money(b.random_p05, '')} .. {_money(b.random_p95, '')}"
    )
    return (
        f"random entry: {b.random_trades} trade{'s' if b.random_trades != 1 else ''} each, with "
        f"the strategy's holding times and sizes, at random times and sides (seed "
        f"{b.random_seed}){spread}"
    )


def _window(console: Console, title: str, part: WindowReport, instrument: InstrumentSpec) -> None:
    unit = f" {instrument.currency}" if instrument.currency else ""
    table = Table(title=f"{title}: {_span(part)}", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    for label, value in report_rows(part.account, instrument.currency, instrument.size_scale):
        table.add_row(label, value)
    console.print(table)
    if part.baselines is None:
        console.print("baselines: n/a (the run has no mid port to price them)")
        return
    beside = Table(
        title="beside the baselines over the same window, net of the same fees",
        title_justify="left",
    )
    for column in ("", "net PnL", "beaten by the strategy?"):
        beside.add_column(column, justify="left" if not column else "right")
    for row in baseline_rows(part.baselines, unit, instrument.size_scale):
        beside.add_row(*row)
    console.print(beside)
    console.print(random_note(part.baselines))


def _bundles(console: Console, report: TradingReport, unit: str) -> None:
    table = Table(
        title="out of sample, per bundle in effect (each beside its baselines)",
        title_justify="left",
    )
    for column in ("bundle", "window", "trips", "net PnL", "buy & hold", "random median", "beats"):
        table.add_column(column, justify="left" if column in ("bundle", "window") else "right")
    for part in report.bundles:
        b, a = part.baselines, part.account
        beats = (
            "-"
            if b is None
            else "/".join(
                _verdict(x) for x in (b.beats_no_trade, b.beats_buy_and_hold, b.beats_random)
            )
        )
        table.add_row(
            part.window.name,
            _span(part),
            str(a.round_trips),
            _money(a.net_pnl, unit),
            _money(None if b is None else b.buy_and_hold, unit),
            _money(None if b is None else b.random_median, unit),
            beats,
        )
    console.print(table)
    console.print("beats: no trade / buy and hold / random entry")


def print_trading_report(
    console: Console, manifest: RunManifest, instrument: InstrumentSpec
) -> None:
    """The run's trading report, when its pipeline trades (see the module docstring)."""
    report = stored_report(manifest)
    if report is None:
        return
    console.print(f"trading report of {manifest.run_id}: {report.basis}")
    if report.out_of_sample is not None:
        _window(console, "OUT OF SAMPLE", report.out_of_sample, instrument)
    else:
        console.print("[bold]no out-of-sample window[/]: every prediction was in sample")
    if report.bundles:
        _bundles(console, report, f" {instrument.currency}" if instrument.currency else "")
    if report.in_sample is not None:
        _window(console, NOT_EVIDENCE, report.in_sample, instrument)
