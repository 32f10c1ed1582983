"""``tape train``: train a CatBoost model bundle from a session's log (docs/models.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.app.cli.model_options import MODELS_STAGE_ID
from engine.app.cli.root import app, console, context, fail
from engine.app.cli.run_commands import parse_time_ns
from engine.models import ModelStore, ModelStoreError
from engine.runtime import ConfigError, RunError
from engine.runtime.runner import Progress as RunProgress
from engine.runtime.topology import Catalog

if TYPE_CHECKING:  # imported when used: catboost and polars take a second to load
    from engine.app.training import Cutoff, TrainResult


def parse_cutoff(text: str) -> Cutoff:
    """``--until``: a journal offset, an ISO time (UTC if no zone), or ``N%`` of the session's
    event-time span."""
    from engine.app.training import Cutoff

    value = text.strip()
    if value.endswith("%"):
        try:
            fraction = float(value[:-1]) / 100.0
        except ValueError:
            fraction = -1.0
        if not 0.0 < fraction <= 1.0:
            raise typer.BadParameter(f"{text!r}: a share must be above 0% and at most 100%")
        return Cutoff(value, fraction=fraction)
    if value.isdigit():
        return Cutoff(value, offset=int(value))
    try:
        return Cutoff(value, ts=parse_time_ns(value))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give a journal offset, a time like 2012-06-21T13:30:30Z, or a share of "
            "the session like 60%"
        ) from None


@app.command("train")
def train_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session to train on (see `tape topics`).")],
    until: Annotated[
        str,
        typer.Option(
            help="Train on labels matured at or before this journal OFFSET, TIME (ISO, UTC) "
            "or share of the session (60%)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Model store to write to (default <data dir>/models).", show_default=False
        ),
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of the labelled rows held out, the latest.")
    ] = 0.2,
    horizon_ms: Annotated[
        int | None, typer.Option(help="Label horizon (default: per venue).")
    ] = None,
    threshold_bp: Annotated[
        float | None, typer.Option(help="Label threshold (default: per venue).")
    ] = None,
    seed: Annotated[int, typer.Option(help="CatBoost random seed.")] = 0,
    threads: Annotated[
        int, typer.Option(help="CatBoost threads (recorded in the card).", min=1)
    ] = 1,
    iterations: Annotated[
        int, typer.Option(help="Boosting rounds of each base model.", min=1)
    ] = 100,
    depth: Annotated[int, typer.Option(help="Tree depth of each base model.", min=1, max=10)] = 4,
    learning_rate: Annotated[float, typer.Option(help="CatBoost learning rate.")] = 0.05,
    folds: Annotated[
        int, typer.Option(help="Time-ordered blocks for the meta-learner's inputs.", min=2)
    ] = 4,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> str:
    """Train context, micro and meta CatBoost models on a session; store them as a bundle."""
    from engine.app.training import TrainError, TrainOptions, train

    data = context(ctx)
    cutoff = parse_cutoff(until)
    labels = {
        k: v
        for k, v in (("horizon_ms", horizon_ms), ("threshold_bp", threshold_bp))
        if v is not None
    }
    options = TrainOptions(
        cutoff, holdout, seed, threads, iterations, depth, learning_rate, folds, labels
    )
    default = data.data / "models"
    store = ModelStore(out if out is not None else default)
    began = time.perf_counter()
    try:
        with _display(quiet) as (on_progress, step):
            result = train(data.log, session, options, store, on_progress, step)
    except (TrainError, RunError, ConfigError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    _report(result, session, time.perf_counter() - began)
    _next_command(result.bundle, store, session, store.directory != default, context(ctx).pipelines)
    return result.bundle  # for `tape demo`, which invokes this command


@contextmanager
def _display(
    quiet: bool,
) -> Iterator[tuple[Callable[[RunProgress], None], Callable[[str], None]]]:
    """A progress bar for the labels run, then a spinner naming each training step."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    task = bar.add_task("train", total=None)

    def progress(p: RunProgress) -> None:
        bar.update(task, completed=p.offset, total=p.stop)

    def step(what: str) -> None:
        bar.update(task, description=what, completed=0, total=None)

    with bar:
        yield progress, step


def _report(result: TrainResult, session: str, seconds: float) -> None:
    card, d = result.card, result.card.data
    source = "reused" if result.reused_run else "new"
    console.print(
        f"trained on session {session}: {source} labels run {result.run_id}, labels matured by "
        f"{d.until} (horizon {d.labels['horizon_ms']} ms, threshold {d.labels['threshold_bp']} bp)"
    )
    console.print(
        f"rows: {d.train.rows:,} train (offsets {d.train.first_origin:,}.."
        f"{d.train.last_maturity:,}), "
        f"{d.holdout.rows:,} holdout (from offset {d.holdout.first_origin:,}); embargo "
        f"{d.embargo_ns / 1e9:g} s; classes down/flat/up train "
        f"{'/'.join(str(v) for v in d.train.class_counts.values())}, holdout "
        f"{'/'.join(str(v) for v in d.holdout.class_counts.values())}"
    )
    table = Table(title="holdout metrics (out of sample, time-ordered)", title_justify="left")
    for column in (
        "model",
        "hash",
        "accuracy",
        "log loss",
        "baseline",
        "down P/R",
        "flat P/R",
        "up P/R",
    ):
        table.add_column(column, justify="left" if column in ("model", "hash") else "right")
    for role, m in card.metrics.items():
        cells = [
            f"{_pct(c.precision)}/{_pct(c.recall)}"
            for c in (m.classes[n] for n in ("down", "flat", "up"))
        ]
        table.add_row(
            role,
            card.models[role].hash[:12],
            f"{m.accuracy:.3f}",
            f"{m.log_loss:.3f}",
            f"{m.baseline_accuracy:.3f}",
            *cells,
        )
    console.print(table)
    console.print(
        f"baseline: always {('down', 'flat', 'up')[card.metrics['meta'].baseline_class + 1]} (the "
        f"training majority); uniform guessing has log loss 1.099. {seconds:.1f} s"
    )


def _next_command(
    bundle: str, store: ModelStore, session: str, elsewhere: bool, pipelines: Catalog
) -> None:
    console.print(f"bundle [bold]{bundle}[/] in {store.directory}")
    runnable = [p.name for p in pipelines if any(s.id == MODELS_STAGE_ID for s in p.stages)]
    models = f" --models {store.directory}" if elsewhere else ""
    name = runnable[0] if runnable else "NAME"
    lead = "run it" if runnable else "run it with a pipeline that has the models stage"
    console.print(f"{lead}: tape run {session} --pipeline {name} --bundle {bundle[:12]}{models}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
