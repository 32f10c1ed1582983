"""``tape train``: train a CatBoost model bundle (or a walk-forward card of bundles) from the
log of one or more sessions (docs/models.md)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from engine.app.cli.model_cards import UNIFORM, metrics_table, print_schedule, windows_lines
from engine.app.cli.model_options import MODELS_STAGE_ID
from engine.app.cli.root import app, console, context, fail
from engine.app.cli.run_commands import parse_time_ns
from engine.models import ModelStore, ModelStoreError
from engine.runtime import ConfigError, RunError
from engine.runtime.runner import Progress as RunProgress
from engine.runtime.topology import Catalog

if TYPE_CHECKING:  # imported when used: catboost and polars take a second to load
    from engine.app.training import Cutoff, TrainResult, Windows

DEFAULT_FOLDS = 5
"""Walk-forward test windows when neither --folds nor --train/--test is given."""


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


DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
UNITS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}


def parse_duration(text: str) -> int:
    """A duration like ``90s``, ``30m``, ``1.5h`` or ``2d``, in ns."""
    match = DURATION.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r}: give a duration like 500ms, 90s, 30m, 1.5h or 2d")
    return round(float(match[1]) * UNITS[match[2]])


@app.command("train")
def train_command(
    ctx: typer.Context,
    sessions: Annotated[
        list[str],
        typer.Argument(help="Session(s) to train on, oldest first when several (`tape topics`)."),
    ],
    until: Annotated[
        str | None,
        typer.Option(
            help="Train on labels matured at or before this journal OFFSET, TIME (ISO, UTC) "
            "or share of the session (60%). Not with --walk-forward."
        ),
    ] = None,
    walk_forward: Annotated[
        bool,
        typer.Option(
            "--walk-forward",
            help="One bundle per test window, each fitted only on what came before it.",
        ),
    ] = False,
    folds: Annotated[
        int | None, typer.Option(help="Walk-forward: this many equal test windows.", min=1)
    ] = None,
    train_window: Annotated[
        str | None,
        typer.Option("--train", help="Walk-forward: training span before the first test (30m)."),
    ] = None,
    test_window: Annotated[
        str | None, typer.Option("--test", help="Walk-forward: each test window's length (10m).")
    ] = None,
    rolling: Annotated[
        bool,
        typer.Option(
            "--rolling/--expanding",
            help="Walk-forward: fit on the last window only, or on everything before.",
        ),
    ] = False,
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
    meta_folds: Annotated[
        int, typer.Option(help="Time-ordered blocks for the meta-learner's inputs.", min=2)
    ] = 4,
    layers: Annotated[
        str,
        typer.Option(
            help="Model design: merged (one model over all features), or two (context, micro) "
            "or five base models under a meta-learner."
        ),
    ] = "merged",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> str:
    """Train base and meta CatBoost models on sessions; store them as a bundle (or, with
    --walk-forward, one bundle per fold on one walk-forward card)."""
    from engine.app.training import TrainError, TrainOptions, train, train_walk_forward

    data = context(ctx)
    labels = {
        k: v
        for k, v in (("horizon_ms", horizon_ms), ("threshold_bp", threshold_bp))
        if v is not None
    }
    if walk_forward == (until is not None):
        fail("give --until CUT to train one bundle, or --walk-forward for one per fold")
    cutoff = parse_cutoff(until or "100%")
    options = TrainOptions(
        cutoff, holdout, seed, threads, iterations, depth, learning_rate, meta_folds, labels, layers
    )
    default = data.data / "models"
    store = ModelStore(out if out is not None else default)
    began = time.perf_counter()
    try:
        with _display(quiet) as (on_progress, step):
            if walk_forward:
                windows = _windows(folds, train_window, test_window, rolling)
                result = train_walk_forward(
                    data.log, sessions, options, windows, store, on_progress, step
                )
            else:
                trained = train(data.log, sessions, options, store, on_progress, step)
    except (TrainError, RunError, ConfigError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    seconds = time.perf_counter() - began
    if walk_forward:
        print_schedule(console, result.schedule, result.card)
        bundle = result.schedule
    else:
        _report(trained, " ".join(sessions))
        bundle = trained.bundle
    console.print(f"{seconds:.1f} s")
    _next_command(bundle, store, sessions[-1], store.directory != default, data.pipelines)
    return bundle  # for `tape demo`, which invokes this command


def _windows(
    folds: int | None, train_window: str | None, test_window: str | None, rolling: bool
) -> Windows:
    from engine.app.training import Windows

    if folds is not None and (train_window or test_window):
        fail("give --folds N, or --train W --test T, not both")
    if folds is None and (train_window is None) != (test_window is None):
        fail("--train and --test go together")
    if train_window is not None and test_window is not None:
        return Windows(
            rolling, train_ns=parse_duration(train_window), test_ns=parse_duration(test_window)
        )
    return Windows(rolling, folds=folds or DEFAULT_FOLDS)


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


def _report(result: TrainResult, sessions: str) -> None:
    card = result.card
    source = "reused" if result.reused_run else "new"
    d = card.data
    console.print(
        f"trained on {sessions}: {source} labels run {result.run_id} (horizon "
        f"{d.labels['horizon_ms']} ms, threshold {d.labels['threshold_bp']} bp); classes "
        f"down/flat/up train {'/'.join(str(v) for v in d.train.class_counts.values())}, holdout "
        f"{'/'.join(str(v) for v in d.holdout.class_counts.values())}"
    )
    for line in windows_lines(card):
        console.print(line)
    console.print(metrics_table("holdout metrics (out of sample, time-ordered)", card))
    console.print(
        f"baselines: always {('down', 'flat', 'up')[card.metrics['meta'].baseline_class + 1]} "
        f"(the training majority) for accuracy, the training class frequencies for log loss; "
        f"{UNIFORM}"
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
