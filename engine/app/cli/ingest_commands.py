"""``tape ingest binance | lobster | b3``: real market data into session journals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated

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
from engine.app.ingest.session import IngestError, IngestJob, Item, Summary, run
from engine.app.ingest.source import InputFile, fingerprint, open_input

ingest_app = typer.Typer(
    help="Import recorded market data into a session journal.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")

Session = Annotated[str, typer.Option("--session", help="Session name (unique in the data dir).")]
Strict = Annotated[bool, typer.Option("--strict", help="Stop at the first bad record, exit 1.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


def _existing(path: Path) -> Path:
    if not path.is_file():
        fail(f"input file {path} does not exist")
    return path


def _execute(job: IngestJob, items: Iterator[Item], files: list[InputFile], quiet: bool) -> None:
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
            summary = run(job, tracked(), lambda: sum(f.lines_read for f in files))
    except IngestError as exc:
        fail(str(exc), code=1)
    _print_summary(summary)


def _print_summary(s: Summary) -> None:
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
    table.add_row("time", f"{s.seconds:.2f} s ({rate:,.0f} lines/s)")
    table.add_row("quarantined", f"{sum(s.quarantined.values()):,}")
    for reason, count in sorted(s.quarantined.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    console.print(table)
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
        Path, typer.Argument(help="Recording: `<receive_ts_ns> <json>` lines, .gz ok.")
    ],
    session: Session,
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
    """Binance spot or USD-M futures depth/trade/bookTicker recording with a REST snapshot."""
    from engine.app.ingest import binance  # the importers load numba: only when one runs

    path = _existing(file)
    try:
        market, symbol = binance.detect(path)
    except ValueError as exc:
        fail(str(exc))
    spec = binance.instrument(market, symbol, price_scale, size_scale)
    args = f"{market} {symbol} {spec.price_scale} {spec.size_scale}"
    digest = fingerprint([path], binance.IMPORTER_VERSION, args)
    source = f"{binance.IMPORTER_VERSION} {path.name} sha256-fingerprint {digest}"
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
    converter = binance.BinanceConverter(spec, market == "usdm", str(path))
    inp = InputFile(path)

    def items() -> Iterator[Item]:
        yield from converter.convert(inp.lines())

    _execute(job, items(), [inp], quiet)
    if converter.gaps:
        console.print(
            f"[yellow]warning:[/] {converter.gaps} depth sequence gap(s): the book is stale from "
            "each until the next snapshot (see feed.gap_detected in the journal)."
        )


@ingest_app.command("lobster")
def ingest_lobster(
    ctx: typer.Context,
    message_csv: Annotated[Path, typer.Argument(help="LOBSTER message file.")],
    orderbook_csv: Annotated[Path, typer.Argument(help="The matching orderbook file.")],
    symbol: Annotated[str, typer.Option("--symbol", help="Ticker, e.g. AAPL.")],
    day: Annotated[str, typer.Option("--date", help="Trading day, YYYY-MM-DD.")],
    session: Session,
    strict: Strict = False,
    quiet: Quiet = False,
) -> None:
    """A LOBSTER message/orderbook pair; the orderbook becomes the oracle of book-check."""
    from engine.app.ingest import lobster

    paths = [_existing(message_csv), _existing(orderbook_csv)]
    try:
        trading_day = date.fromisoformat(day)
    except ValueError:
        fail(f"--date {day!r} is not YYYY-MM-DD")
    levels = _lobster_levels(orderbook_csv)
    digest = fingerprint(paths, lobster.IMPORTER_VERSION, symbol, day, str(levels))
    source = (
        f"{lobster.IMPORTER_VERSION} {message_csv.name} {orderbook_csv.name} fingerprint {digest}"
    )
    spec = lobster.instrument(symbol)
    job = IngestJob(
        context(ctx).log,
        session,
        lobster.IMPORTER_VERSION,
        digest,
        [str(p) for p in paths],
        spec,
        source,
        strict,
    )
    converter = lobster.LobsterConverter(trading_day, str(message_csv), str(orderbook_csv), levels)
    files = [InputFile(p) for p in paths]
    _execute(job, converter.convert(files[0].lines(), files[1].lines()), files, quiet)


def _lobster_levels(path: Path) -> int:
    with open_input(path) as f:
        columns = f.readline().count(b",") + 1
    if columns % 4 or not 1 <= columns // 4 <= 10:
        fail(
            f"{path}: line 1 has {columns} columns; a LOBSTER orderbook file has 4 per "
            "level, 1..10 levels"
        )
    return columns // 4


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

    path = _existing(file)
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
    _execute(job, b3.B3Converter(spec, str(path)).convert(inp.lines()), [inp], quiet)
