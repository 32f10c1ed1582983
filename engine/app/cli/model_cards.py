"""Model cards and walk-forward cards as people read them (``tape train``, ``tape models``):
windows with their times, out-of-sample metrics beside the baselines, and the folds."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from engine.app.cli.render import format_ns
from engine.models import Card, Metrics, ModelCard, Rows, WalkForwardCard

UNIFORM = "uniform guessing has log loss 1.099"


def when(ns: int) -> str:
    """A time for tables: to the millisecond, UTC."""
    return format_ns(ns)[:23] + "Z" if ns else "-"


def span(rows: Rows) -> str:
    """A span of rows: times, sessions and offsets."""
    where = (
        rows.first_session
        if rows.first_session == rows.last_session
        else f"{rows.first_session}..{rows.last_session}"
    )
    return (
        f"{rows.rows:,} rows, {when(rows.first_ts)} .. {when(rows.last_ts)} ({where} offsets "
        f"{rows.first_origin:,}..{rows.last_origin:,})"
    )


def metrics_table(title: str, card: ModelCard) -> Table:
    """Per role: hash, accuracy, log loss and both baselines, per-class precision / recall."""
    table = Table(title=title, title_justify="left")
    columns = ("model", "hash", "accuracy", "log loss", "baseline acc", "baseline log loss")
    for column in (*columns, "down P/R", "flat P/R", "up P/R"):
        table.add_column(column, justify="left" if column in ("model", "hash") else "right")
    for role, m in card.metrics.items():
        cells = [
            f"{_pct(c.precision)}/{_pct(c.recall)}"
            for c in (m.classes[n] for n in ("down", "flat", "up"))
        ]
        table.add_row(role, card.models[role].hash[:12], *_scores(m), *cells)
    return table


def _scores(m: Metrics) -> list[str]:
    base_ll = "-" if m.baseline_log_loss is None else f"{m.baseline_log_loss:.4f}"
    return [f"{m.accuracy:.4f}", f"{m.log_loss:.4f}", f"{m.baseline_accuracy:.4f}", base_ll]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def windows_lines(card: ModelCard) -> list[str]:
    """The card's time windows, explicitly: what was fitted on, what was held out, and from
    when predictions are out of sample."""
    d = card.data
    return [
        f"trained on: {span(d.train)}; labels matured by {d.until} ({when(d.until_ts)})",
        f"held out:   {span(d.holdout)}",
        f"in sample until {when(d.in_sample_until)} (the cut plus the {d.embargo_ns / 1e9:g} s "
        "embargo): predictions before it are flagged in sample",
    ]


def print_bundle(console: Console, ref: str, card: ModelCard) -> None:
    """A bundle's card: windows, metrics, settings."""
    d = card.data
    console.print(f"bundle [bold]{ref}[/] ({', '.join(card.bases())} under meta)")
    for line in windows_lines(card):
        console.print("  " + line)
    console.print(
        f"  labels: horizon {d.labels['horizon_ms']} ms, threshold {d.labels['threshold_bp']} bp; "
        f"sessions {', '.join(s.session for s in d.sessions) or d.session}; seed {card.seed}, "
        f"threads {card.thread_count}"
    )
    console.print(metrics_table("holdout metrics (out of sample, time-ordered)", card))
    console.print(
        "baselines: always the training majority (accuracy) and the training class "
        f"frequencies (log loss); {UNIFORM}"
    )


def folds_table(card: WalkForwardCard) -> Table:
    """One row per fold: its windows and the meta-learner's out-of-sample scores."""
    table = Table(
        title=f"walk-forward, {card.scheme}: every fold scored on a window it never saw",
        title_justify="left",
    )
    for column in (
        "fold",
        "bundle",
        "fitted on",
        "tested on",
        "rows",
        "accuracy",
        "log loss",
        "baseline acc",
        "baseline log loss",
        "beats",
    ):
        table.add_column(
            column, justify="left" if column in ("bundle", "fitted on", "tested on") else "right"
        )
    for fold in card.folds:
        m = fold.metrics["meta"]
        table.add_row(
            str(fold.index),
            fold.bundle[:12],
            f"{fold.train.rows:,} rows to {when(fold.train.last_ts)}",
            f"{when(fold.test.first_ts)} .. {when(fold.test.last_ts)}",
            f"{fold.test.rows:,}",
            *_scores(m),
            _beats(m),
        )
    m = card.pooled["meta"]
    table.add_row("all", "", "", "pooled over every fold", f"{m.rows:,}", *_scores(m), _beats(m))
    return table


def _beats(m: Metrics) -> str:
    acc = m.accuracy > m.baseline_accuracy
    loss = m.baseline_log_loss is not None and m.log_loss < m.baseline_log_loss
    return f"{'yes' if acc else 'no'}/{'yes' if loss else 'no'}"


def print_schedule(console: Console, ref: str, card: WalkForwardCard) -> None:
    """A walk-forward card: its folds, each beside the baselines, and the pooled scores."""
    sessions = ", ".join(s.session for s in card.sessions)
    console.print(
        f"walk-forward card [bold]{ref}[/]: {len(card.folds)} folds over {sessions}, "
        f"{card.layers} layers, embargo {card.embargo_ns / 1e9:g} s"
    )
    console.print(folds_table(card))
    console.print(
        "meta-learner scores; beats: accuracy above the training majority / log loss below "
        f"the training class frequencies (each fold's own); {UNIFORM}"
    )


def print_card(console: Console, ref: str, card: Card) -> None:
    """Either kind of card."""
    if isinstance(card, WalkForwardCard):
        print_schedule(console, ref, card)
    else:
        print_bundle(console, ref, card)
