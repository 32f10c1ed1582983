"""A run's stored trading report as text rows, for every screen that shows it (``tape run``,
``tape report``, the dashboard): the out-of-sample window beside its three baselines first,
each bundle's own window, and in-sample figures labelled as not evidence (docs/trading.md,
"Out of sample, or labelled")."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from engine.app.text import format_ns
from engine.events.control import InstrumentSpec
from engine.runtime.manifest import RunManifest
from streams.trading.baselines import Baselines
from streams.trading.evaluation import TradingReport, WindowReport
from streams.trading.report import report_rows

NOT_EVIDENCE = "IN SAMPLE - not evidence: the models were fitted on this period"
OUT_OF_SAMPLE = "OUT OF SAMPLE"
BEATS_COLUMNS = "beats: no trade / buy and hold / random entry"


@dataclass(frozen=True)
class WindowText:
    """One window of the report as text: its title, the account and the baselines."""

    title: str
    account: list[tuple[str, str]]
    baselines: list[tuple[str, str, str]] | None
    """(what, net PnL, beaten by the strategy?); None: no mid port to price them with."""
    note: str


def stored_report(manifest: RunManifest) -> TradingReport | None:
    """The trading report a run's manifest stores, if its pipeline trades."""
    raw = manifest.report.get("trading")
    return None if raw is None else msgspec.convert(raw, TradingReport)


def windows(report: TradingReport, instrument: InstrumentSpec) -> list[WindowText]:
    """The out-of-sample window (if any), then the in-sample one (if any), as text."""
    out = []
    if report.out_of_sample is not None:
        out.append(window_text(OUT_OF_SAMPLE, report.out_of_sample, instrument))
    if report.in_sample is not None:
        out.append(window_text(NOT_EVIDENCE, report.in_sample, instrument))
    return out


def window_text(title: str, part: WindowReport, instrument: InstrumentSpec) -> WindowText:
    """One window: account rows, baseline rows and the random-entry note."""
    unit = f" {instrument.currency}" if instrument.currency else ""
    b = part.baselines
    return WindowText(
        f"{title}: {span(part)}",
        report_rows(part.account, instrument.currency, instrument.size_scale),
        None if b is None else baseline_rows(b, unit, instrument.size_scale),
        "baselines: n/a (the run has no mid port to price them)" if b is None else random_note(b),
    )


def bundle_rows(report: TradingReport, unit: str) -> list[tuple[str, ...]]:
    """Per bundle in effect: bundle, window, trips, net PnL, buy & hold, random median, beats
    (see :data:`BEATS_COLUMNS`)."""
    rows: list[tuple[str, ...]] = []
    for part in report.bundles:
        b, a = part.baselines, part.account
        beats = (
            "-"
            if b is None
            else "/".join(
                verdict(x) for x in (b.beats_no_trade, b.beats_buy_and_hold, b.beats_random)
            )
        )
        rows.append(
            (
                part.window.name,
                span(part),
                str(a.round_trips),
                money(a.net_pnl, unit),
                money(None if b is None else b.buy_and_hold, unit),
                money(None if b is None else b.random_median, unit),
                beats,
            )
        )
    return rows


def span(part: WindowReport) -> str:
    """A window's journal offsets and event-time range."""
    w = part.window
    offsets = ", ".join(f"{a:,}..{b - 1:,}" for a, b in w.intervals)
    when = f"{format_ns(w.first_ts)} .. {format_ns(w.last_ts)}" if w.last_ts else "no state"
    return f"journal offsets {offsets} ({when})"


def money(value: float | None, unit: str) -> str:
    """A signed amount with two decimals, or n/a."""
    return "n/a" if value is None else f"{value:+,.2f}{unit}"


def verdict(beats: bool | None) -> str:
    """yes, no or n/a."""
    return "n/a" if beats is None else ("yes" if beats else "no")


def baseline_rows(b: Baselines, unit: str, size_scale: int = 0) -> list[tuple[str, str, str]]:
    """(what, net PnL, beaten?) for the strategy and each baseline; sizes in the instrument's
    units (``size_scale`` decimal places)."""
    share = "" if b.random_beaten_share is None else f" ({b.random_beaten_share:.0%} of draws)"
    size = b.buy_and_hold_size / 10**size_scale
    return [
        ("the strategy", money(b.strategy, unit), ""),
        ("no trade", money(b.no_trade, unit), verdict(b.beats_no_trade)),
        (
            f"buy and hold ({size:,.{size_scale}f})",
            money(b.buy_and_hold, unit),
            verdict(b.beats_buy_and_hold),
        ),
        (
            f"random entry (median of {b.random_draws})",
            money(b.random_median, unit),
            verdict(b.beats_random) + share,
        ),
    ]


def random_note(b: Baselines) -> str:
    """What the random-entry baseline drew, in one line."""
    spread = (
        ""
        if b.random_p05 is None
        else f"; 5-95%: {money(b.random_p05, '')} .. {money(b.random_p95, '')}"
    )
    return (
        f"random entry: {b.random_trades} trade{'s' if b.random_trades != 1 else ''} each, with "
        f"the strategy's holding times and sizes, at random times and sides (seed "
        f"{b.random_seed}){spread}"
    )
