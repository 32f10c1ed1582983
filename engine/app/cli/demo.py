"""``tape demo``: the bundled real-data samples, end to end, with nothing to set up.

Each sample in ``replays/samples/`` is ingested into a session journal (a no-op when it already
is) and its order book rebuilt and checked against the venue's own record of the book. On the
longest sample, six minutes of Binance BTCUSDT spot, the baseline models are trained on the
first 60 % of the session; the whole decision pipeline (book, features, labels, models,
agents, consensus, risk, simulated execution, portfolio) runs over the session with them,
is replayed and verified bit for bit, and its trading report is printed. The short samples run
the same pipeline with the online model alone. One order is traced back to the journal
records behind it, every batch of every topic is CRC-checked, and the log is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.rule import Rule

from engine.app.cli.book_commands import book_check
from engine.app.cli.ingest_commands import ingest_b3, ingest_binance, ingest_lobster
from engine.app.cli.log_commands import dump, stats, topics, verified
from engine.app.cli.root import app, console, context, fail
from engine.app.cli.run_commands import replay_command, run_command, runs_command, trace_command
from engine.app.cli.train_commands import train_command
from engine.runtime import read_manifest

SAMPLES = Path(__file__).resolve().parents[3] / "replays" / "samples"

AAPL = "demo-aapl"
DAY = "demo-btcusdt-spot-day"
"""The whole shared spot recording (346 s): long enough for the features to warm up (90 s)."""
SPOT = "demo-btcusdt-spot"
USDM = "demo-btcusdt-usdm"
WDO = "demo-wdo"


@app.command()
def demo(
    ctx: typer.Context,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Replay as live: the spot day through the exchange simulator into tape live "
            "(paper broker), then verify the run bit for bit.",
        ),
    ] = False,
) -> None:
    """Ingest the bundled real samples, rebuild and check their books, show the log."""
    if not SAMPLES.is_dir():
        fail(f"the bundled samples are missing: {SAMPLES} does not exist (a broken checkout?)")
    console.print(f"data directory: {context(ctx).data.resolve()}")
    if live:
        _live_demo(ctx)
        return
    _step("1. ingest real market data into session journals")
    ctx.invoke(
        ingest_lobster,
        ctx,
        message_csv=SAMPLES / "lobster_AAPL_2012-06-21_message_10.csv.gz",
        orderbook_csv=SAMPLES / "lobster_AAPL_2012-06-21_orderbook_10.csv.gz",
        symbol="AAPL",
        day="2012-06-21",
        session=AAPL,
    )
    ctx.invoke(
        ingest_binance,
        ctx,
        file=SAMPLES / "binance_spot_btcusdt_20240808_head3000.gz",
        session=SPOT,
    )
    ctx.invoke(
        ingest_binance,
        ctx,
        file=SAMPLES / "binance_usdm_btcusdt_20240808_head3000.gz",
        session=USDM,
    )
    ctx.invoke(ingest_b3, ctx, file=SAMPLES / "b3_wdou25_20250811_head2000.csv.gz", session=WDO)
    ctx.invoke(ingest_binance, ctx, file=SAMPLES / "binance_spot_btcusdt_20240808.gz", session=DAY)

    _step("2. rebuild each order book and check it against the venue's own")
    for session in (AAPL, SPOT, USDM, WDO, DAY):
        ctx.invoke(book_check, ctx, session=session)

    _step(f"3. train the models on the first 60 % of {DAY} (the rest is out of sample)")
    bundle = ctx.invoke(train_command, ctx, sessions=[DAY], until="60%", quiet=True)

    _step(
        f"4. run the whole decision pipeline over {DAY} with them (the report keeps the "
        "out-of-sample part apart, beside baselines), then replay and compare"
    )
    traded = _run_and_verify(ctx, DAY, bundle)

    _step("5. the same pipeline over the short samples (online model only), replayed and compared")
    for session in (AAPL, SPOT, USDM, WDO):
        _run_and_verify(ctx, session, None)
    ctx.invoke(runs_command, ctx)

    orders = next(
        o.count for o in read_manifest(context(ctx).data, traded).outputs if o.port == "orders"
    )
    port = "orders" if orders else "decisions"
    _step(f"6. trace the first of {port} back to the journal records that caused it")
    ctx.invoke(trace_command, ctx, run_id=traded, topic=port, offset=0)

    _step("7. verify the CRC32C of every batch in the log")
    log = context(ctx).log
    checked = [verified(log, topic) for topic in log.topics()]
    console.print(
        f"{len(checked)} topics: {sum(r for r, _ in checked):,} records intact "
        f"({sum(b for _, b in checked):,} bytes), every batch's CRC32C checked "
        "(one topic: tape verify TOPIC)"
    )

    _step("8. what is in the log")
    ctx.invoke(topics, ctx)
    ctx.invoke(stats, ctx, topic=f"{AAPL}.journal")
    ctx.invoke(dump, ctx, topic=f"{AAPL}.journal", from_offset=19, limit=12)

    _step("done")
    console.print(
        f"Try: [bold]tape replay {traded} --until 100000[/], "
        f"[bold]tape trace {traded} decisions 3000[/], "
        "[bold]tape dump demo-btcusdt-spot.journal --from 500 --format json[/], "
        "[bold]tape book-check demo-aapl[/]. See README.md and docs/replay.md."
    )


def _run_and_verify(ctx: typer.Context, session: str, bundle: str | None) -> str:
    """Run the default pipeline over ``session`` (once per data directory), verify its replay."""
    run_id = f"{session}-demo"
    if not (context(ctx).data / "runs" / run_id / "manifest.json").is_file():
        ctx.invoke(run_command, ctx, session=session, run_id=run_id, quiet=True, bundle=bundle)
    ctx.invoke(replay_command, ctx, run_id=run_id, verify_run=True, quiet=True)
    return run_id


def _live_demo(ctx: typer.Context) -> None:
    """The spot day replayed as live: simulator -> feed -> journal -> pipeline -> paper broker."""
    from engine.app.cli.live_commands import live_binance
    from engine.app.exchange_sim import BackgroundSim

    log = context(ctx).log
    n = next(i for i in range(1, 10_000) if not log.has_topic(f"demo-live-{i}.journal"))
    session = run_id = f"demo-live-{n}"  # a new session each time: this one is for watching
    recording = SAMPLES / "binance_spot_btcusdt_20240808.gz"
    _step(f"1. serve {recording.name} over Binance's protocol on loopback (tape exchange-sim)")
    with BackgroundSim(recording) as urls:
        console.print(f"{urls} (as fast as the feed reads)")
        _step(f"2. trade it live on paper: tape live binance BTCUSDT --session {session}")
        ctx.invoke(
            live_binance, ctx, symbol="BTCUSDT", session=session, ws_url=urls.ws,
            rest_url=urls.rest, run_id=run_id, end_with_feed=True,
        )  # fmt: skip
    _step(f"3. replay {run_id} from its journal and compare every output bit for bit")
    ctx.invoke(replay_command, ctx, run_id=run_id, verify_run=True, quiet=True)
    console.print(
        f"Try: [bold]tape dump {session}.journal --limit 20[/], "
        f"[bold]tape trace {run_id} decisions 100[/]; docs/live.md explains live sessions."
    )


def _step(title: str) -> None:
    console.print(Rule(f"[bold]{title}", align="left"))
