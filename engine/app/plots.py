"""``tape report RUN --plot FILE``: a run's picture without a browser (matplotlib).

Three panels: the mid price with the run's orders and fills (the bundle's in-sample span
shaded when the run is of its training session), equity with the drawdown below it, and the
feature drift between the bundle's training rows and the run (PSI of each model input,
``engine.app.runview.card``). ``.png`` and ``.svg`` are matplotlib's own output; ``.html``
is one self-contained page with the SVG inline and the trading report beside it.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

from engine.app.runview import RunData, downsample
from engine.app.runview.card import feature_drift, periods
from engine.app.runview.series import Series

FORMATS = (".png", ".svg", ".html")
PLOT_POINTS = 4000
DRIFT_SHOWN = 15


class PlotError(ValueError):
    """A plot that cannot be written (unknown format); the message says what to use."""


def _times(ns: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return ns.astype("datetime64[ns]")


def _line(ax: Any, line: Series | None, **style: Any) -> None:
    if line is not None and len(line.ts):
        shown = downsample(line, PLOT_POINTS)
        ax.plot(_times(shown.ts), shown.values, **style)


def _price(ax: Any, run: RunData, lines: dict[str, Series]) -> None:
    _line(ax, lines.get("mid"), color="#2457c5", linewidth=0.8, label="mid")
    for side, color, marker in ((1, "#0f9d58", "^"), (-1, "#d93025", "v")):
        orders = [o for o in run.orders() if o["side"] == side]
        if orders:
            ax.scatter(_times(np.array([o["ts"] for o in orders])), [o["price"] for o in orders],
                       marker=marker, color=color, s=40, zorder=4,
                       label=f"{'buy' if side > 0 else 'sell'} orders")  # fmt: skip
    fills = run.fills()
    if fills:
        when = _times(np.array([f["ts"] for f in fills]))
        ax.scatter(when, [f["price"] for f in fills], marker="D", color="#e11d9b",
                   edgecolor="white", s=50, zorder=5, label="fills")  # fmt: skip
    if run.card is not None:
        for period in periods(run.card, run):
            inside = period.label.startswith("in-sample")
            span = _times(np.array([period.start_ns, period.end_ns]))
            ax.axvspan(span[0], span[1], color="#ffaa00" if inside else "#2457c5", alpha=0.12,
                       label=period.label)  # fmt: skip
    ax.set_ylabel(f"price ({run.instrument.currency})")
    ax.set_title(f"{run.manifest.run_id}: mid, orders and fills")
    ax.legend(loc="upper left", fontsize=7)


def _equity(ax: Any, dd_ax: Any, lines: dict[str, Series]) -> None:
    _line(ax, lines.get("equity"), color="#0b7285", linewidth=1.0)
    ax.set_ylabel("equity")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_title("equity and drawdown")
    drawdown = lines.get("drawdown")
    if drawdown is not None and len(drawdown.ts):
        shown = downsample(drawdown, PLOT_POINTS)
        dd_ax.fill_between(
            _times(shown.ts), shown.values, 0, color="#d93025", alpha=0.3, step="post"
        )
    dd_ax.set_ylabel("drawdown %")
    locator = mdates.AutoDateLocator()
    dd_ax.xaxis.set_major_locator(locator)
    dd_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    dd_ax.set_xlabel("event time (UTC)")


def _drift(ax: Any, run: RunData) -> None:
    ax.set_title("feature drift: training rows vs this run (PSI; > 0.25 is a large shift)")
    found = feature_drift(run.card, run) if run.card is not None else []
    if not found:
        reason = "no model bundle" if run.card is None else "training rows not in this log"
        ax.text(0.5, 0.5, f"no drift to show: {reason}", ha="center", va="center")
        ax.set_axis_off()
        return
    shown = found[:DRIFT_SHOWN][::-1]
    ax.barh([d.feature for d in shown], [d.psi for d in shown], color="#7048e8")
    ax.axvline(0.25, color="#d93025", linewidth=0.8, linestyle="--")
    ax.tick_params(axis="y", labelsize=7)


def figure(run: RunData) -> Figure:
    """The run's three panels."""
    fig = Figure(figsize=(11, 11), layout="constrained")
    grid = fig.add_gridspec(4, 1, height_ratios=[3, 2, 1, 3])
    price = fig.add_subplot(grid[0])
    equity = fig.add_subplot(grid[1], sharex=price)
    drawdown = fig.add_subplot(grid[2], sharex=price)
    lines = run.lines()
    _price(price, run, lines)
    _equity(equity, drawdown, lines)
    _drift(fig.add_subplot(grid[3]), run)
    return fig


def write_plot(run: RunData, path: Path, report: list[tuple[str, str]] | None = None) -> Path:
    """Write the run's plot to ``path`` (.png, .svg or .html)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise PlotError(f"cannot plot to {path.name}: use a file ending in {', '.join(FORMATS)}")
    fig = figure(run)
    if suffix != ".html":
        fig.savefig(path, dpi=110)
        return path
    svg = io.StringIO()
    fig.savefig(svg, format="svg")
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in report or []
    )
    title = html.escape(run.manifest.run_id)
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif'><h1>Run {title}</h1>"
        f"<table border='1' cellpadding='4'>{rows}</table>{svg.getvalue()}</body></html>"
    )
    return path
