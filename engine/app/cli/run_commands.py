"""``tape run``, ``tape runs``, ``tape replay`` and ``tape trace``: the runtime from the shell."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.tree import Tree

from engine.app.cli.metrics_options import MetricsPort, metered
from engine.app.cli.model_options import Models, model_store, with_bundle
from engine.app.cli.render import format_ns
from engine.app.cli.root import app, console, context, fail
from engine.log import DiskFullError
from engine.models import ModelStoreError
from engine.runtime import (
    ConfigError,
    Link,
    RunConfig,
    RunError,
    execute,
    list_runs,
    offset_at_time,
    read_manifest,
    state_at,
    trace,
    verify,
)
from engine.runtime.manifest import RunManifest, code_version, new_run_id
from engine.runtime.replay import Divergence, Verification
from engine.runtime.runner import Progress as RunProgress
from engine.runtime.runs import session_opened

Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
Batch = Annotated[
    int, typer.Option(help="Journal events per slice (results never depend on it).", min=1)
]


def load_config(path: Path | None, pipeline: str | None) -> RunConfig | None:
    """A run config from a TOML or JSON file, with ``--pipeline`` taking precedence."""
    if path is None:
        return RunConfig(pipeline=pipeline) if pipeline else None
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else msgspec.json.decode(raw)
        config = msgspec.convert(data, type=RunConfig)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
        fail(f"cannot read config {path}: {exc}")
    except msgspec.ValidationError as exc:
        fail(f"config {path}: {exc}")
    return msgspec.structs.replace(config, pipeline=pipeline) if pipeline else config


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[RunProgress], None]]:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("journal events"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(p: RunProgress) -> None:
        bar.update(task, completed=p.offset, total=p.stop)

    with bar:
        yield update


@app.command("run")
def run_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Session to run (see `tape topics`).")],
    pipeline: Annotated[
        str | None, typer.Option(help="Pipeline name (default: the config's, else default).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Run config, TOML or JSON (see docs/replay.md).")
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="Name the run; an unfinished run of this id is resumed."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            help="Live: process events one at a time as the journal grows, until session.closed."
        ),
    ] = False,
    batch: Batch = 65536,
    quiet: Quiet = False,
    models: Models = None,
    bundle: Annotated[
        str | None,
        typer.Option(
            "--bundle",
            help="Model bundle hash or unique prefix (from `tape train`): sets "
            "stages.models.bundle.",
        ),
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run a pipeline over a session; outputs and a manifest go under the run's own id."""
    log = context(ctx).log
    store = model_store(log.root, models)
    try:
        run_config = load_config(config, pipeline)
        if bundle is not None:
            run_config = with_bundle(run_config, store, bundle, context(ctx).pipelines)
        chosen = (run_config or RunConfig()).pipeline
        run_id = run_id or new_run_id(log.root, session, chosen)
        with (
            _progress(f"run {session}", quiet) as update,
            metered(metrics_port, log, session, run_id, update) as on_progress,
        ):
            outcome = execute(
                log,
                session,
                run_config,
                pipelines=context(ctx).pipelines,
                run_id=run_id,
                batch=batch,
                follow=follow,
                on_progress=on_progress,
                models=store,
            )
    except (RunError, ConfigError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    except DiskFullError as exc:
        again = f"`tape run {session} --run-id {run_id or 'ID'}`"
        if not run_id:
            again += " (its ID is in `tape runs`)"
        fail(
            f"{exc}\nThe run stopped; what it wrote up to its last snapshot is kept. Once there "
            f"is room, {again} resumes it from there and ends with the same outputs as an "
            "uninterrupted run.",
            code=1,
        )
    m = outcome.manifest
    if outcome.resumed_from is not None:
        console.print(
            f"resumed run {m.run_id} from its snapshot at journal offset {outcome.resumed_from:,}"
        )
    table = Table(title=f"run {m.run_id} complete", title_justify="left")
    for column in ("port", "topic", "events", "hash chain", "event time"):
        table.add_column(column, justify="right" if column == "events" else "left")
    for o in m.outputs:
        span = f"{format_ns(o.first_ts)} .. {format_ns(o.last_ts)}" if o.count else "-"
        table.add_row(o.port, o.topic, f"{o.count:,}", o.chain[:16], span)
    console.print(table)
    console.print(
        f"journal {m.journal_topic} offsets {m.journal_start:,}..{m.journal_stop - 1:,} in "
        f"{m.wall_seconds:.3f} s ({m.events_per_second:,.0f} events/s); outputs hash "
        f"{m.outputs_hash[:16]}; code {m.code.commit[:12]}{' (dirty)' if m.code.dirty else ''}"
    )
    if m.models:
        console.print("models: " + ", ".join(f"{k} {v[:16]}" for k, v in m.models.items()))
    from engine.app.cli.trading_report import print_trading_report  # loads the stages

    print_trading_report(console, m, session_opened(log, m.session).instrument)
    console.print(f"verify it any time: tape replay {m.run_id} --verify")


@app.command("runs")
def runs_command(ctx: typer.Context) -> None:
    """List the runs in the data directory."""
    found = list_runs(context(ctx).data)
    if not found:
        console.print("no runs yet: start one with `tape run SESSION`")
        return
    table = Table(title="runs", title_justify="left")
    for column in (
        "run id",
        "session",
        "pipeline",
        "status",
        "journal",
        "outputs",
        "hash",
        "started (UTC)",
    ):
        table.add_column(column)
    for m in found:
        table.add_row(
            m.run_id,
            m.session,
            m.pipeline,
            m.status,
            f"{m.journal_start:,}..{m.journal_stop - 1:,}",
            f"{sum(o.count for o in m.outputs):,}",
            m.outputs_hash[:12] or "-",
            m.started,
        )
    console.print(table)


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run to replay (see `tape runs`).")],
    verify_run: Annotated[
        bool, typer.Option("--verify", help="Recompute and compare every output bit for bit.")
    ] = False,
    until: Annotated[
        str | None,
        typer.Option(
            help="Stop after this journal OFFSET or event TIME (ISO, UTC) and show "
            "every processor's state."
        ),
    ] = None,
    no_snapshots: Annotated[
        bool, typer.Option("--no-snapshots", help="With --until: replay from the start.")
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the verify scratch directory for inspection.")
    ] = False,
    batch: Batch = 65536,
    quiet: Quiet = False,
    models: Models = None,
) -> None:
    """Replay a run: --verify proves it reproduces; --until shows the state at a moment."""
    if verify_run == (until is not None):
        fail("give exactly one of --verify or --until OFFSET|TIME")
    log = context(ctx).log
    store = model_store(log.root, models)
    try:
        if until is not None:
            manifest = read_manifest(log.root, run_id)
            offset = _until_offset(log, manifest, until)
            moment = state_at(
                log,
                run_id,
                offset,
                pipelines=context(ctx).pipelines,
                use_snapshots=not no_snapshots,
                batch=batch,
                models=store,
            )
            _print_moment(moment)
            return
        _print_fingerprint(read_manifest(log.root, run_id))
        with _progress(f"replay {run_id}", quiet) as update:
            result = verify(
                log,
                run_id,
                pipelines=context(ctx).pipelines,
                batch=batch,
                keep_scratch=keep,
                on_progress=update,
                models=store,
            )
    except (RunError, ConfigError, ModelStoreError) as exc:
        fail(str(exc), code=1)
    if result.identical:
        topics = len(result.replayed)
        console.print(
            f"[bold green]bit-for-bit identical:[/] {result.events:,} events in {topics} "
            f"topic{'s' if topics != 1 else ''} (outputs hash "
            f"{result.manifest.outputs_hash[:16]})"
        )
        return
    _print_divergence(result)
    raise typer.Exit(1)


def _print_fingerprint(manifest: RunManifest) -> None:
    """Before replaying: how this machine and checkout differ from the run's (code first)."""
    differences = manifest.code.differences(code_version())
    if not differences:
        return
    console.print(
        f"[yellow]warning:[/] code differs from the run's manifest: this replay runs on another "
        f"fingerprint than run {manifest.run_id} ({len(differences)} difference"
        f"{'s' if len(differences) != 1 else ''}); a divergence is then most likely explained "
        "by one of them:"
    )
    for difference in differences:
        console.print(f"  {difference}")


def _until_offset(log: Any, manifest: Any, text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return offset_at_time(log, manifest, parse_time_ns(text))
    except ValueError as exc:
        fail(
            f"--until {text!r}: {exc}; give a journal offset or a time like "
            "2012-06-21T13:30:00.004241176Z"
        )


_ISO = re.compile(
    r"^(?P<base>\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d)?)?)"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<zone>Z|[+-]\d\d:?\d\d)?$"
)


def parse_time_ns(text: str) -> int:
    """ISO-8601 time to ns since the epoch; up to 9 fractional digits; no zone means UTC."""
    match = _ISO.match(text.strip())
    if match is None:
        raise ValueError("not an ISO-8601 time")
    zone = match["zone"] or "+00:00"
    stamp = datetime.fromisoformat(match["base"] + ("+00:00" if zone == "Z" else zone))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    frac = int((match["frac"] or "0").ljust(9, "0"))
    return int(stamp.timestamp()) * 1_000_000_000 + frac


def _print_divergence(result: Verification) -> None:
    pipeline = result.manifest.pipeline
    for port in result.missing_ports:
        console.print(
            f"[bold red]replay failed:[/] port {port!r} (topic run.{result.manifest.run_id}."
            f"{port}) is in the run's manifest, but pipeline {pipeline!r} no longer writes it: "
            "its stage was removed or renamed, or the port made transient"
        )
    if not result.differing_ports:
        return
    console.print(
        f"[bold red]replay diverged[/] in {len(result.differing_ports)} of "
        f"{len(result.replayed)} topics: {', '.join(result.differing_ports)}"
    )
    recorded = {o.port: o for o in result.manifest.outputs}
    for o in result.replayed:
        r = recorded.get(o.port)
        if r is not None and (r.count, r.chain) != (o.count, o.chain):
            console.print(
                f"  {o.port}: recorded {r.count:,} events, chain {r.chain[:16]}; "
                f"replayed {o.count:,}, chain {o.chain[:16]}"
            )
    d = result.divergence
    if d is None:
        console.print(
            "the run's own output topics are gone, so the differing event cannot be "
            "shown; only the counts and hashes above"
        )
    else:
        _print_first(d)
    console.print(
        "likely cause" + ("s, most likely first:" if len(result.likely_causes) > 1 else ":")
    )
    for cause in result.likely_causes:
        console.print(f"  {cause}")


def _print_first(d: Divergence) -> None:
    console.print(
        f"\nfirst divergence: topic [bold]{d.topic}[/] offset [bold]{d.offset}[/], "
        f"caused by journal offset {d.cause}"
    )
    table = Table(title_justify="left")
    table.add_column("field")
    table.add_column("recorded run")
    table.add_column("replay")
    differing = set(d.fields)
    a, b = d.recorded or {}, d.replayed or {}
    for name in dict.fromkeys([*a, *b]):
        style = "bold red" if name in differing else ""
        table.add_row(name, _cell(a.get(name, "-")), _cell(b.get(name, "-")), style=style)
    if d.recorded is None or d.replayed is None:
        side = "recorded run" if d.recorded is None else "replay"
        console.print(f"the {side} has no event at this offset")
    console.print(table)
    if d.journal_event is not None:
        console.print(f"journal event {d.cause} that caused it:")
        console.print("  " + "  ".join(f"{k}={_cell(v)}" for k, v in d.journal_event.items()))


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 90 else text[:87] + "..."


def _print_moment(moment: Any) -> None:
    start = (
        f"from its snapshot at journal offset {moment.from_snapshot:,}"
        if moment.from_snapshot is not None
        else "from the start of its journal range"
    )
    console.print(
        f"run {moment.manifest.run_id} replayed {start} through journal offset {moment.offset:,}"
    )
    if moment.journal_event is not None:
        console.print(
            "last journal event: "
            + "  ".join(f"{k}={_cell(v)}" for k, v in moment.journal_event.items())
        )
    for stage, state in moment.states.items():
        table = Table(title=f"stage {stage}", title_justify="left", show_header=False)
        for key, value in state.items():
            table.add_row(key, _cell(value))
        console.print(table)


@app.command("trace")
def trace_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run (see `tape runs`).")],
    topic: Annotated[str, typer.Argument(help="Port name (book, mid, ...) or full topic name.")],
    offset: Annotated[int, typer.Argument(help="Offset of the event in that topic.", min=0)],
) -> None:
    """Print the causal chain of an event back to the journal events behind it."""
    try:
        root = trace(context(ctx).log, run_id, topic, offset, pipelines=context(ctx).pipelines)
    except (RunError, ConfigError) as exc:
        fail(str(exc), code=1)
    tree = Tree(_label(root))
    _grow(tree, root)
    console.print(tree)


def _label(link: Link) -> str:
    fields = {k: v for k, v in link.event.items() if k not in {"type", "ts_recv"}}
    ts = fields.pop("ts_event", None)
    when = f" {format_ns(int(ts))}" if isinstance(ts, int) else ""
    relation = "" if link.relation == "root" else f" ({link.relation})"
    body = " ".join(f"{k}={_cell(v)}" for k, v in fields.items())
    return f"[bold]{link.port}[/] #{link.offset} {link.event.get('type')}{when}{relation}: {body}"


def _grow(tree: Tree, link: Link) -> None:
    for child in link.inputs:
        _grow(tree.add(_label(child)), child)
