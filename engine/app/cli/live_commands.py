"""``tape live binance SYMBOL``, and ``tape halt | resume | flatten SESSION`` (docs/live.md)."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
import time
import tomllib
from datetime import time as day_time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer

from engine.app.cli.metrics_options import MetricsHost, MetricsPort, metrics_endpoint
from engine.app.cli.model_options import Models, model_store, with_bundle
from engine.app.cli.root import LOG_ENV, app, console, context, err_console, fail
from engine.log import EmbeddedLog, FsyncMode, FsyncPolicy, LogError
from engine.runtime import ConfigError, RunConfig, RunError

if TYPE_CHECKING:  # the live session loads the pipeline's stages: only when a command runs
    from engine.app.live.hours import Hours
    from engine.app.live.session import LiveConfig, LiveResult
    from engine.app.live.status import LiveStatus
    from engine.log.kafka import KafkaLog

LIVE_SYNC_MS = 100
"""Unless ``--fsync`` says otherwise, ``tape live`` appends without syncing and a background
thread syncs the journal every 100 ms: a process crash loses nothing, a power loss at most
the last 100 ms, and no sync ever stalls a message (docs/live.md)."""

live_app = typer.Typer(help="Live trading sessions: a venue's feed in, paper orders out.")
app.add_typer(live_app, name="live")


def _live_config_file(path: Path | None, pipeline: str | None) -> tuple[RunConfig, dict[str, Any]]:
    """The run config of a config file (its ``[broker]`` table apart), ``--pipeline`` first."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = path.read_bytes()
            is_toml = path.suffix == ".toml"
            data = tomllib.loads(raw.decode()) if is_toml else msgspec.json.decode(raw)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
            fail(f"cannot read config {path}: {exc}")
    broker = data.pop("broker", {})
    if pipeline:
        data["pipeline"] = pipeline
    try:
        return msgspec.convert(data, type=RunConfig), broker
    except msgspec.ValidationError as exc:
        fail(f"config {path}: {exc}")


def _hours(calendar: str | None, roll: str | None) -> Hours:
    from engine.app.live.hours import AlwaysOpen, CalendarHours

    if calendar is not None:
        try:
            return CalendarHours(calendar)
        except ValueError as exc:
            fail(str(exc))
    if roll is None:
        return AlwaysOpen()
    try:
        return AlwaysOpen(day_time.fromisoformat(roll))
    except ValueError:
        fail(f"--roll must be a UTC time of day like 00:00, got {roll!r}")


def _status_line(status: LiveStatus) -> None:
    line = (
        f"live {status.session}: {status.events:,} events ({status.events_per_second:,.0f}/s) "
        f"lag {status.lag_events} ev {status.lag_ms:.1f} ms | latency p50 "
        f"{status.latency_p50_us:,.0f} us p99 {status.latency_p99_us:,.0f} us | position "
        f"{status.position} equity {status.equity:,.2f} PnL {status.pnl:+,.2f} | decisions "
        f"{status.decisions} orders {status.orders} fills {status.fills}"
    )
    if status.feed_error:
        line += f" | feed: {status.feed_error}"
    if sys.stderr.isatty():
        err_console.print(line, end="\r", overflow="crop", no_wrap=True)
    else:
        err_console.print(line)


@live_app.command("binance")
def live_binance(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Binance symbol, e.g. BTCUSDT.")],
    session: Annotated[str, typer.Option("--session", help="Session name (new, or to resume).")],
    market: Annotated[str, typer.Option(help="spot or usdm (USD-M futures).")] = "spot",
    ws_url: Annotated[
        str | None, typer.Option(help="Stream base URL (default: Binance's public one).")
    ] = None,
    rest_url: Annotated[
        str | None, typer.Option(help="REST base URL (default: Binance's public one).")
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help="Pipeline (default: default).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Run config, TOML or JSON; may hold a [broker] table.")
    ] = None,
    bundle: Annotated[str | None, typer.Option(help="Model bundle hash (tape train).")] = None,
    models: Models = None,
    broker: Annotated[
        str, typer.Option(help="paper, simulated (the pipeline's own venue), or a real one.")
    ] = "paper",
    live_money: Annotated[
        bool, typer.Option("--live-money", help="Consent to real money (with the config's).")
    ] = False,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Name the run; an unfinished one resumes.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds.", min=0.0)
    ] = None,
    tick_ms: Annotated[int, typer.Option(help="clock.ticked interval in ms (0: none).")] = 1000,
    paper_latency_ms: Annotated[
        float, typer.Option(help="Paper broker: order latency in ms.", min=0.001)
    ] = 1.0,
    calendar: Annotated[
        str | None, typer.Option(help="Trade this exchange calendar's hours (e.g. XNYS).")
    ] = None,
    roll: Annotated[
        str | None,
        typer.Option(help="24/7 venues: a session per day, rolled at HH:MM UTC (SESSION-DATE)."),
    ] = None,
    end_with_feed: Annotated[
        bool, typer.Option("--end-with-feed", help="Close when the feed says it has ended.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No status line.")] = False,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
    log_address: Annotated[
        str | None,
        typer.Option(
            "--log",
            envvar=LOG_ENV,
            help="Journal and run on a Kafka cluster: kafka://HOST:PORT[,HOST:PORT] "
            "(default: the data directory).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Trade SYMBOL live on paper: Binance's feed in, the pipeline, the paper broker out.

    Ctrl-C or SIGTERM stops cleanly (resumable with the same --session and --run-id).
    With --log kafka://..., the journal is a Kafka topic and the pipeline runs on it as a
    worker does; `tape mirror` brings the finished run back (docs/live.md)."""
    if market not in ("spot", "usdm"):
        fail(f"--market must be spot or usdm, got {market!r}")
    if calendar is not None and roll is not None:
        fail("--calendar and --roll exclude each other: a calendar venue closes at its close")
    if log_address is not None and not log_address.startswith("kafka://"):
        fail(
            f"--log takes a Kafka cluster, kafka://HOST:PORT, got {log_address!r}; a data "
            "directory is given with --data"
        )
    if log_address is not None and metrics_port is not None:
        fail(
            "--metrics-port measures a session on a data directory; on Kafka the pipeline runs "
            "in the worker's loop, which this meter does not see: drop one of the two flags"
        )
    policy, sync_ms = context(ctx).fsync, 0
    source = ctx.find_root().get_parameter_source("fsync")
    if source is None or source.name == "DEFAULT":  # no --fsync given
        policy, sync_ms = FsyncPolicy(FsyncMode.NEVER), LIVE_SYNC_MS
    log = EmbeddedLog(context(ctx).data, policy)
    from engine.app.brokers import BrokerRefusedError, LiveMoney
    from engine.app.feeds.binance import FeedConfig
    from engine.app.ingest import binance
    from engine.app.live.meter import LiveMetrics
    from engine.app.live.session import LiveConfig
    from engine.models import ModelStoreError

    store = model_store(log.root, models)
    run_config, broker_entry = _live_config_file(config, pipeline)
    symbol = symbol.upper()
    kafka = None
    try:
        if log_address is not None:
            kafka = _open_kafka(log_address)
        if bundle is not None:
            run_config = with_bundle(run_config, store, bundle, context(ctx).pipelines)
        live = LiveConfig(
            session=session,
            feed=FeedConfig(symbol, market, ws_url, rest_url, end_with_feed=end_with_feed),
            instrument=binance.instrument(market, symbol),
            pipelines=context(ctx).pipelines,
            run=run_config,
            run_id=run_id,
            broker=broker,
            consent=LiveMoney(live_money, broker_entry),
            paper_latency_ms=paper_latency_ms,
            tick_ms=tick_ms,
            duration=duration,
            hours=_hours(calendar, roll),
            sync_ms=sync_ms,
            models=store,
        )
        metrics = LiveMetrics() if metrics_port is not None else None
        with metrics_endpoint(metrics_port, metrics_host, metrics):
            live.metrics = metrics
            asyncio.run(_run(log, live, quiet, daily=roll is not None, kafka=kafka))
    except (
        RunError,
        ConfigError,
        ModelStoreError,
        BrokerRefusedError,
        LogError,
        ValueError,
    ) as exc:
        fail(str(exc), code=1)


def _closed(result: LiveResult, config: LiveConfig, kafka: KafkaLog | None, root: Path) -> None:
    """Print how one session ended: its trading report, or, on Kafka, how to bring it back."""
    m, session = result.manifest, config.session
    if m is None:
        console.print(f"session {session}: {result.reason}; nothing was journaled")
        return
    console.print(
        f"session {session} closed ({result.reason}); run {m.run_id} {m.status}: journal "
        f"{m.journal_start:,}..{m.journal_stop - 1:,}, outputs hash {m.outputs_hash[:16]}"
    )
    if kafka is not None:
        # commands are printed whole, never wrapped: they are copied and pasted
        console.print(
            f"bring it back: tape mirror {kafka.url} {root} --session {session} --run {m.run_id}",
            soft_wrap=True,
        )
        console.print(f"then verify it: tape replay {m.run_id} --verify", soft_wrap=True)
        return
    from engine.app.cli.trading_report import print_trading_report

    print_trading_report(console, m, config.instrument)
    console.print(f"verify it: tape replay {m.run_id} --verify")


def _open_kafka(address: str) -> KafkaLog:
    """The cluster of ``--log``, or a clear failure when it cannot be reached."""
    from engine.log.kafka import KafkaLog
    from engine.log.locate import open_log

    try:
        log = open_log(address)
    except LogError as exc:
        fail(
            f"tape live --log {address}: {exc} Nothing was journaled; start the broker (or fix "
            "the address) and run the same command again.",
            code=1,
        )
    assert isinstance(log, KafkaLog)
    return log


async def _run(
    log: EmbeddedLog, config: LiveConfig, quiet: bool, daily: bool, kafka: KafkaLog | None
) -> None:
    """Run one session (or, with ``daily``, one per day until stopped), on the data directory
    or on ``kafka``, printing each one's end; SIGINT and SIGTERM stop it cleanly."""
    from engine.app.live.days import DailySessions
    from engine.app.live.session import LiveSession, PipelineHost

    on_kafka: tuple[KafkaLog, PipelineHost] | None = None
    if kafka is not None:
        from engine.app.worker.live import LiveWorker  # the pipeline: the worker's loop

        def host(cluster: KafkaLog, name: str, run: RunConfig, instrument: Any) -> LiveWorker:
            return LiveWorker(
                cluster, name, run, instrument, pipelines=config.pipelines, models=config.models
            )

        on_kafka = (kafka, host)
    on_status = None if quiet else _status_line
    closed = functools.partial(_closed, kafka=kafka, root=log.root)
    runner: LiveSession | DailySessions
    if daily:
        runner = DailySessions(log, config, on_status=on_status, on_closed=closed, kafka=on_kafka)
    else:
        runner = LiveSession(log, config, on_status=on_status, kafka=on_kafka)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop, f"{signal.Signals(sig).name} received")
    try:
        if isinstance(runner, LiveSession):
            closed(await runner.run(), config)
        else:
            await runner.run()
    finally:
        if kafka is not None:
            kafka.close()


Reason = Annotated[str, typer.Option("--reason", help="Why (journaled with the command).")]
Operator = Annotated[
    str | None, typer.Option("--operator", help="Who (default: user@host).", show_default=False)
]


def _command(ctx: typer.Context, session: str, event: msgspec.Struct) -> None:
    """Journal an operator command: at once when no process writes the session, else through
    its inbox, which a running ``tape live`` journals within 0.1 s."""
    from engine.log.journal import append_control, journal_topic

    log = context(ctx).log
    if not log.has_topic(journal_topic(session)):
        fail(f"no session {session!r} in {log.root}", code=1)
    try:
        offsets = append_control(log, session, [event])
    except LogError as exc:
        fail(str(exc), code=1)
    name = type(event).__name__
    if offsets is None:
        console.print(f"{name} queued in {session}.inbox: the live session journals it in order")
    else:
        console.print(f"{name} journaled at {session}.journal offset {offsets[0]:,}")


def _operator(given: str | None) -> str:
    import getpass
    import socket

    return given or f"{getpass.getuser()}@{socket.gethostname()}"


@app.command("halt")
def halt_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Live session.")],
    reason: Reason,
    operator: Operator = None,
) -> None:
    """Stop new orders in SESSION (control.halt_trading) until `tape resume`."""
    from engine.events.control import HaltTrading

    now = time.time_ns()
    _command(ctx, session, HaltTrading(now, now, reason, _operator(operator)))


@app.command("resume")
def resume_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Live session.")],
    operator: Operator = None,
) -> None:
    """Allow orders again in SESSION (control.resume_trading)."""
    from engine.events.control import ResumeTrading

    now = time.time_ns()
    _command(ctx, session, ResumeTrading(now, now, _operator(operator)))


@app.command("flatten")
def flatten_command(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="Live session.")],
    reason: Reason = "operator flatten",
    operator: Operator = None,
) -> None:
    """Cancel the working entry and close SESSION's position at market (a flatten command)."""
    from engine.events.control import FlattenPosition

    now = time.time_ns()
    _command(ctx, session, FlattenPosition(now, now, reason, _operator(operator)))
