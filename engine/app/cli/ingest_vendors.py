"""``tape ingest tardis | databento``: data vendors' files into session journals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.app.cli.ingest_commands import (
    Quiet,
    Session,
    Strict,
    execute,
    existing,
    ingest_app,
    refuse_other_formats,
    report,
)
from engine.app.cli.root import context, fail
from engine.app.ingest.merge import merge
from engine.app.ingest.session import IngestJob
from engine.app.ingest.source import InputFile, fingerprint

if TYPE_CHECKING:  # the importers load numba and databento-dbn: each command imports its own
    from engine.app.ingest import databento

Files = Annotated[list[Path], typer.Argument(help="One or more files of one instrument.")]
PriceScale = Annotated[
    int | None, typer.Option(help="Price decimals (default: known, or what the files show).")
]
SizeScale = Annotated[
    int | None, typer.Option(help="Size decimals (default: known, or what the files show).")
]


@ingest_app.command("tardis")
def ingest_tardis(
    ctx: typer.Context,
    files: Files,
    session: Session,
    price_scale: PriceScale = None,
    size_scale: SizeScale = None,
    strict: Strict = False,
    quiet: Quiet = False,
) -> None:
    """Tardis.dev CSV files of one instrument, merged by local_timestamp.

    Kinds: quotes, trades, incremental_book_L2, book_snapshot_N; plain, .gz or .zst.
    """
    from engine.app.ingest import tardis

    paths = [existing(p) for p in files]
    refuse_other_formats(paths, "tardis")
    try:
        found = [tardis.inspect(p) for p in paths]
    except tardis.TardisError as exc:
        fail(str(exc))
    named = {(f.exchange, f.symbol) for f in found if f.exchange}
    if len(named) != 1:
        which = ", ".join(f"{f.path.name}: {f.exchange} {f.symbol}" for f in found)
        fail(f"a session holds one instrument; these files hold {len(named)} ({which})")
    exchange, symbol = named.pop()
    spec = tardis.instrument(exchange, symbol, price_scale, size_scale, found)
    args = f"{exchange} {symbol} {spec.price_scale} {spec.size_scale}"
    digest = fingerprint(paths, tardis.IMPORTER_VERSION, args)
    names = " ".join(p.name for p in paths)
    job = IngestJob(
        context(ctx).log,
        session,
        tardis.IMPORTER_VERSION,
        digest,
        [str(p) for p in paths],
        spec,
        f"{tardis.IMPORTER_VERSION} {names} fingerprint {digest}",
        strict,
        (tardis.book_description(found),),
    )
    inputs = [InputFile(p) for p in paths]
    converters = [tardis.TardisConverter(f, spec, exchange) for f in found]
    items = merge([c.convert(i.lines()) for c, i in zip(converters, inputs, strict=True)])
    summary = execute(job, items, inputs, quiet)
    ids = sum(c.non_integer_ids for c in converters)
    if ids:
        summary.counts["trade ids that are not integers (kept as 0)"] = ids
    report(summary)


@ingest_app.command("databento")
def ingest_databento(
    ctx: typer.Context,
    files: Files,
    session: Session,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="The instrument, when the files hold several."),
    ] = None,
    strict: Strict = False,
    quiet: Quiet = False,
) -> None:
    """Databento DBN files (.dbn, .dbn.zst) of one instrument, merged by ts_recv.

    Schemas: MBO, MBP-1, MBP-10, trades; definition files set its tick size, multiplier and
    currency.
    """
    from engine.app.ingest import databento

    paths = [existing(p) for p in files]
    refuse_other_formats(paths, "databento")
    try:
        found = [databento.inspect(p) for p in paths]
        market = [f for f in found if f.schema != "definition"]
        if not market:
            fail("only definition files were given: there is no market data to ingest")
        symbol, ids = databento.instrument_ids(market, symbol)
        defs, others = databento.definitions(found, ids)
    except databento.DatabentoError as exc:
        fail(str(exc))
    spec = databento.instrument(symbol, market, defs)
    digest = fingerprint(paths, databento.IMPORTER_VERSION, symbol)
    header = (
        databento.book_description(market),
        *(databento.defined(d, f.path) for f, d in _defined_in(found, defs)),
    )
    names = " ".join(p.name for p in paths)
    job = IngestJob(
        context(ctx).log,
        session,
        databento.IMPORTER_VERSION,
        digest,
        [str(p) for p in paths],
        spec,
        f"{databento.IMPORTER_VERSION} {names} fingerprint {digest}",
        strict,
        header,
    )
    schemas = {f.schema for f in market}
    seen = databento.trade_keys(market, ids) if "trades" in schemas else None
    inputs = [InputFile(f.path) for f in market]
    converters = [databento.DatabentoConverter(f, ids, seen) for f in market]
    items = merge([c.convert(i) for c, i in zip(converters, inputs, strict=True)])
    summary = execute(job, items, inputs, quiet)
    for c in converters:
        for what, count in sorted(c.counts.items()):
            summary.counts[what] = summary.counts.get(what, 0) + count
    if not defs:
        summary.notes.append(
            f"no definition of {symbol} among the files: its tick size is taken as 1e-9 and "
            "its multiplier and currency are unknown; give its definition file (schema "
            "definition) too"
        )
    if others:
        summary.notes.append(f"{others} definition(s) of other instruments were left out")
    report(summary)


def _defined_in(found: list[databento.DbnFile], defs: list[Any]) -> list[tuple[Any, Any]]:
    """Each definition with the file it came from (the first definition file, for the source)."""
    path = next(f for f in found if f.schema == "definition") if defs else None
    return [(path, d) for d in defs]
