"""``tape serve``: the dashboard over the data directory (docs/dashboard.md)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from engine.app.cli.root import DB_ENV, app, context, err_console
from engine.app.web import WebSettings, create_app
from engine.app.web.settings import LOOPBACK_HOSTS


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but loopback is warned about.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port (0: any free port).", min=0, max=65535)
    ] = 8765,
    db: Annotated[
        str | None,
        typer.Option(help="Analyst store URL for the SQL page (read-only); also TAPE_DB."),
    ] = None,
    control: Annotated[
        bool,
        typer.Option(
            "--control",
            help="Allow operator commands (halt, resume, flatten): they are journaled.",
        ),
    ] = False,
    operator: Annotated[
        str, typer.Option(help="Operator name written into journaled commands.")
    ] = "dashboard",
) -> None:
    """Serve the dashboard: runs, charts, traces, verification, live sessions (read-only)."""
    import uvicorn

    ctx_ = context(ctx)
    if host not in LOOPBACK_HOSTS:
        err_console.print(
            f"[bold yellow]warning:[/] serving on {host}, not loopback: anyone who can reach "
            "this address can read every run" + (" and send operator commands" if control else "")
        )
    url = db or os.environ.get(DB_ENV)
    if url is None and (ctx_.data / "store.sqlite").is_file():
        url = f"sqlite:///{(ctx_.data / 'store.sqlite').resolve()}"
    settings = WebSettings(
        data=ctx_.data, pipelines=ctx_.pipelines, db_url=url, control=control,
        operator=operator, host=host,
    )  # fmt: skip
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    err_console.print(
        f"tape serve: data {ctx_.data.resolve()}, "
        f"{'operator commands allowed' if control else 'read-only'}; Ctrl-C stops"
    )
    server.run()
