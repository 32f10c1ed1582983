"""``tape monitor``: live tables of the sessions on a Kafka cluster, as JSON (docs/monitor.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.app.cli.root import LOG_ENV, app, console, context, fail
from engine.log import LogError


@app.command()
def monitor(
    ctx: typer.Context,
    log_address: Annotated[
        str | None,
        typer.Option(
            "--log",
            envvar=LOG_ENV,
            help="The cluster: kafka://HOST:PORT[,HOST:PORT].",
            show_default=False,
        ),
    ] = None,
    session: Annotated[
        list[str] | None,
        typer.Option(help="Only this session and its runs (repeatable; default: all)."),
    ] = None,
    web_port: Annotated[int, typer.Option(help="Port of the JSON views (127.0.0.1).")] = 6066,
    app_id: Annotated[
        str,
        typer.Option(
            "--app-id",
            help="faust app id: the consumer group and the prefix of its changelog topics. "
            "A new id starts the tables afresh from the start of the topics.",
        ),
    ] = "tapedeck-monitor",
    loglevel: Annotated[str, typer.Option(help="faust's log level.")] = "warning",
) -> None:
    """Keep live tables per session (PnL by minute, decisions, rejections, orders, fills,
    lag and latency percentiles) from a Kafka cluster and serve them as JSON."""
    if not log_address or not log_address.startswith("kafka://"):
        fail(
            "tape monitor reads a Kafka cluster: pass --log kafka://HOST:PORT (or set "
            f"{LOG_ENV}); on the embedded log `tape serve` shows the same figures"
        )
    # confluent-kafka and faust load for this command only (fast `tape --help`)
    from engine.log.locate import open_log

    try:
        open_log(log_address).close()  # a missing broker is reported now, not retried forever
    except LogError as exc:
        fail(str(exc), code=1)
    import faust

    from engine.app.monitor.app import build_app

    bootstrap = log_address.removeprefix("kafka://").rstrip("/")
    datadir = context(ctx).data / "monitor" / app_id  # faust's own files (its tables are memory)
    datadir.mkdir(parents=True, exist_ok=True)
    monitor_app = build_app(
        bootstrap,
        app_id=app_id,
        sessions=session,
        web_port=web_port,
        datadir=datadir,
    )
    console.print(
        f"monitor {app_id} on {bootstrap}: JSON at http://127.0.0.1:{web_port}/ "
        "(/sessions/NAME/, /runs/RUN_ID/); Ctrl-C stops it"
    )
    worker = faust.Worker(monitor_app, loglevel=loglevel.upper(), quiet=True)
    worker.execute_from_commandline()
