"""``tape ingest binance | lobster | b3``: real market data into session journals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from engine.app.cli.root import app, console, context, fail
from engine.app.ingest.lobster_files import LobsterInput, LobsterInputError
from engine.app.ingest.lobster_files import resolve as resolve_lobster
from engine.app.ingest.session import IngestError, IngestJob, Item, Summary, run
from engine.app.ingest.sniff import SniffError, wrong_importer
from engine.app.ingest.source import InputFile, fingerprint
from engine.log import DiskFullError

if TYPE_CHECKING:  # the importers load numba: each command imports its own when it runs
    from engine.app.ingest import binance, lobster
    from engine.app.ingest.continuation import FinalBook

ingest_app = typer.Typer(
    help="Import recorded market data into a session journal.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")

Session = Annotated[str, typer.Option("--session", help="Session name (unique in the data dir).")]
Strict = Annotated[bool, typer.Option("--strict", help="Stop at the first bad record, exit 1.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


def existing(path: Path) -> Path:
    """``path``, or exit with an error if it is not a file."""
    if not path.is_file():
        fail(f"input file {path} does not exist")
    return path


def refuse_other_formats(paths: list[Path], importer: str) -> None:
    """Stop before anything is written if a file is empty, not UTF-8, or another format."""
    for path in paths:
        try:
            problem = wrong_importer(path, importer)
        except SniffError as exc:
            fail(str(exc))
        if problem is not None:
            fail(problem)


def execute(job: IngestJob, items: Iterator[Item], files: list[InputFile], quiet: bool) -> Summary:
    """Run the ingest with a progress bar; the summary is printed by :func:`report`."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    task = progress.add_task(f"ingest {job.session}", total=sum(f.size for f in files), lines=0)

    def tracked() -> Iterator[Item]:
        for n, item in enumerate(items):
            if n % 16 == 0:
                progress.update(
                    task,
                    completed=sum(f.position for f in files),
                    lines=sum(f.lines_read for f in files),
                )
            yield item

    try:
        with progress:
            return run(job, tracked(), lambda: sum(f.lines_read for f in files), files)
    except IngestError as exc:
        fail(str(exc), code=1)
    except DiskFullError as exc:
        fail(f"{exc}\nNothing of session {job.session!r} was kept; run the same command again "
             "once there is room: it starts the ingest over.", code=1)  # fmt: skip


def report(s: Summary) -> None:
    """Print what an ingest did: counts, quarantine reasons, warnings, where inputs were cut."""
    if s.skipped:
        console.print(
            f"session {s.session}: already ingested from this identical input; nothing to do."
        )
        return
    table = Table(title=f"session {s.session} ingested", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rate = s.lines / s.seconds if s.seconds else 0.0
    table.add_row("input lines", f"{s.lines:,}")
    table.add_row("market records", f"{s.records:,}")
    table.add_row("control events", f"{s.events:,}")
    for what, count in s.counts.items():
        table.add_row(what, f"{count:,}")
    table.add_row("time", f"{s.seconds:.2f} s ({rate:,.0f} lines/s)")
    table.add_row("quarantined", f"{sum(s.quarantined.values()):,}")
    for reason, count in sorted(s.quarantined.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    console.print(table)
    for where in s.ended_early:
        console.print(
            f"[yellow]warning:[/] input ended early: {where}. Everything before it was "
            "ingested; the session is marked as ending early (--strict makes this an error)."
        )
    for note in s.info:
        console.print(f"note: {note}", markup=False)
    for note in s.notes:
        console.print(f"[yellow]warning:[/] {note}")
    if s.quarantined:
        console.print(
            f"bad records are kept in topic {s.session}.quarantine "
            f"(`tape dump {s.session}.quarantine`)"
        )


@ingest_app.command("binance")
def ingest_binance(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Recording: `<receive_ts_ns> <json>` lines, .gz/.zst ok.")
    ],
    session: Session,
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            help="The session of the recording this one continues: start from its final book.",
        ),
    ] = None,
    strict: Strict = False,
    quiet: Quiet = False,
    price_scale: Annotated[
        int | None,
        typer.Option(help="Override the price scale (decimal places, 0-18).", min=0, max=18),
    ] = None,
    size_scale: Annotated[
        int | None,
        typer.Option(help="Override the size scale (decimal places, 0-18).", min=0, max=18),
    ] = None,
) -> None:
    """Binance spot or USD-M futures recording (depth, trade, bookTicker, REST snapshot).

    A recording without a snapshot can start from the final book of the session it
    continues (--after).
    """
    from engine.app.ingest import binance
    from engine.app.ingest.continuation import final_book

    path = existing(file)
    refuse_other_formats([path], "binance")
    try:
        market, symbol = binance.detect(path)
    except ValueError as exc:
        fail(str(exc))
    spec = binance.instrument(market, symbol, price_scale, size_scale)
    converter = binance.BinanceConverter(spec, market == "usdm", str(path))
    args = f"{market} {symbol} {spec.price_scale} {spec.size_scale}"
    continues = ""
    if after is not None:
        try:
            prior = final_book(context(ctx).log, after, spec)
        except IngestError as exc:
            fail(str(exc))
        converter.continue_from(prior.bids, prior.asks, prior.update_id, prior.last_u, prior.ts)
        args += f" after {after} {prior.fingerprint}"
        continues = f" continues {after}"
    digest = fingerprint([path], binance.IMPORTER_VERSION, args)
    source = f"{binance.IMPORTER_VERSION} {path.name}{continues} sha256-fingerprint {digest}"
    job = IngestJob(
        context(ctx).log,
        session,
        binance.IMPORTER_VERSION,
        digest,
        [str(path)],
        spec,
        source,
        strict,
    )
    inp = InputFile(path)
    summary = execute(job, converter.convert(inp.lines()), [inp], quiet)
    if after is not None:
        summary.info.append(_continuation(after, prior, converter))
    elif converter.snapshots == 0 and not summary.skipped:
        summary.notes.append(
            f"{path.name} has no depth snapshot: the book cannot be rebuilt until one arrives, "
            "and none did, so book-check will compare nothing. If this recording continues "
            "another one (the next file of the same recorder), ingest that one first and pass "
            "--after SESSION to start from its final book."
        )
    report(summary)
    if converter.gaps:
        console.print(
            f"[yellow]warning:[/] {converter.gaps} depth sequence gap(s): the book is stale from "
            "each until the next snapshot (see feed.gap_detected in the journal)."
        )


def _continuation(after: str, prior: FinalBook, converter: binance.BinanceConverter) -> str:
    start = (
        f"started from the final book of {after} ({len(prior.bids)} bids, {len(prior.asks)} "
        f"asks at update id {prior.update_id:,}; its depth chain ended at u={prior.last_u:,})"
    )
    if converter.gaps:
        return f"{start}; the update ids do not all continue: see the gaps below"
    return f"{start}; the update ids continue it without a gap"


@ingest_app.command("lobster")
def ingest_lobster(
    ctx: typer.Context,
    message_csv: Annotated[Path, typer.Argument(help="LOBSTER message file (.gz/.zst ok).")],
    session: Session,
    orderbook_csv: Annotated[
        Path | None,
        typer.Argument(help="The matching orderbook file: book-check's oracle (optional)."),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Ticker (default: from the file name).")
    ] = None,
    day: Annotated[
        str | None,
        typer.Option("--date", help="Trading day, YYYY-MM-DD (default: from the file name)."),
    ] = None,
    levels: Annotated[
        int | None,
        typer.Option("--levels", help="Depth, when neither file name nor orderbook says it."),
    ] = None,
    strict: Strict = False,
    quiet: Quiet = False,
) -> None:
    """A LOBSTER message file at any depth, with its orderbook file or alone.

    The orderbook file is book-check's oracle. Symbol, day and depth come from LOBSTER's file
    names unless given.
    """
    from engine.app.ingest import lobster

    paths = [existing(message_csv)] + ([existing(orderbook_csv)] if orderbook_csv else [])
    try:
        given = resolve_lobster(message_csv, orderbook_csv, symbol, day, levels)
    except LobsterInputError as exc:
        fail(str(exc))
    refuse_other_formats(paths, "lobster")
    job, converter = _lobster_job(ctx, session, given, strict)
    files = [InputFile(p) for p in paths]
    books = files[1].lines() if len(files) > 1 else None
    summary = execute(job, converter.convert(files[0].lines(), books), files, quiet)
    if converter.rounded:
        summary.counts["times rounded to the ns"] = converter.rounded
    summary.notes[:0] = given.notes
    if orderbook_csv is None:
        summary.notes.append(lobster.MESSAGE_ONLY_WARNING.format(levels=given.levels))
    report(summary)


def _lobster_job(
    ctx: typer.Context, session: str, given: LobsterInput, strict: bool
) -> tuple[IngestJob, lobster.LobsterConverter]:
    from engine.app.ingest import lobster

    day = given.day.isoformat()
    message, book = given.messages, given.orderbook
    if book is not None:  # as before message-only ingests existed: the same fingerprint
        paths = [message, book]
        digest = fingerprint(paths, lobster.IMPORTER_VERSION, given.symbol, day, str(given.levels))
        source = f"{lobster.IMPORTER_VERSION} {message.name} {book.name} fingerprint {digest}"
    else:
        paths = [message]
        extra = (given.symbol, day, str(given.levels), "message file only")
        digest = fingerprint(paths, lobster.IMPORTER_VERSION, *extra)
        source = (
            f"{lobster.IMPORTER_VERSION} {message.name} (no orderbook file) fingerprint {digest}"
        )
    job = IngestJob(
        context(ctx).log,
        session,
        lobster.IMPORTER_VERSION,
        digest,
        [str(p) for p in paths],
        lobster.instrument(given.symbol),
        source,
        strict,
        lobster.book_description(given.levels, message.name),
    )
    converter = lobster.LobsterConverter(
        given.day, str(message), str(book) if book else "", given.levels
    )
    return job, converter


@ingest_app.command("b3")
def ingest_b3(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="B3 top-of-book CSV with a header.")],
    session: Session,
    strict: Strict = False,
    quiet: Quiet = False,
) -> None:
    """B3 top-of-book snapshots (level 1 becomes market.quote events)."""
    from engine.app.ingest import b3

    path = existing(file)
    refuse_other_formats([path], "b3")
    try:
        symbol = b3.detect_symbol(path)
    except ValueError as exc:
        fail(str(exc))
    digest = fingerprint([path], b3.IMPORTER_VERSION, symbol)
    source = f"{b3.IMPORTER_VERSION} {path.name} fingerprint {digest}"
    spec = b3.instrument(symbol)
    job = IngestJob(
        context(ctx).log, session, b3.IMPORTER_VERSION, digest, [str(path)], spec, source, strict
    )
    inp = InputFile(path)
    report(execute(job, b3.B3Converter(spec, str(path)).convert(inp.lines()), [inp], quiet))
