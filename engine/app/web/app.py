"""The dashboard's Starlette application: pages, JSON API, live stream, security headers.

Security (docs/dashboard.md, "Security"): requests must name the served host (a guard
against DNS rebinding); every path parameter is validated against what exists
(:mod:`engine.app.web.guard`); pages load scripts from this server only (a strict Content
Security Policy); the state-changing requests (verification, operator commands, SQL) are
POSTs carrying the per-server token only pages of this server know; operator commands are
refused unless the server was started with ``--control``; SQL goes through the store's
read-only query path only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.app.store.migrate import StoreError
from engine.app.store.query import run_query
from engine.app.web import guard, views
from engine.app.web.control import COMMANDS, ControlError, journal
from engine.app.web.live import LiveWatch
from engine.app.web.settings import WebSettings
from engine.app.web.verifier import Verifier
from engine.log import EmbeddedLog
from engine.runtime import ConfigError, RunError, RunManifest

HERE = Path(__file__).parent
LIVE_INTERVAL_SECONDS = 0.5
QUERY_ROWS = 200
MAX_BODY = 64 * 1024
"""Largest request body accepted (the only bodies are an SQL statement or nothing)."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


class JSON(JSONResponse):
    """JSON through msgspec: NaN becomes null, numpy scalars are never seen here."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


class Dashboard:
    """The state behind the routes: the log, caches, verification jobs, live watches."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.log = EmbeddedLog(settings.data)
        models = settings.models or settings.data / "models"
        self.runs = views.RunCache(self.log, models)
        self.verifier = Verifier(self.log, settings.pipelines, models)
        self.watches: dict[str, LiveWatch] = {}
        self.templates = Jinja2Templates(directory=HERE / "templates")

    def page(self, request: Request, name: str, **context: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request,
            name,
            {"token": self.settings.token, "control": self.settings.control,
             "has_db": self.settings.db_url is not None, **context},
        )  # fmt: skip

    def watch(self, session: str) -> LiveWatch:
        if session not in self.watches:
            self.watches[session] = LiveWatch(self.log, session, self.settings.pipelines)
        return self.watches[session]


Handler = Callable[[Request], Awaitable[Response]]


def handled(endpoint: Callable[[Dashboard, Request], Any]) -> Callable[[Dashboard], Handler]:
    """An endpoint run in a worker thread (it reads files), with errors turned into HTTP."""

    def bind(dashboard: Dashboard) -> Handler:
        async def handler(request: Request) -> Response:
            request.state.body = await request.body() if request.method == "POST" else b""
            try:
                result = await anyio.to_thread.run_sync(endpoint, dashboard, request)
            except guard.BadRequestError as exc:
                return failure(request, str(exc), 400)
            except guard.NotFoundError as exc:
                return failure(request, str(exc), 404)
            except (RunError, ConfigError, ControlError, StoreError) as exc:
                return failure(request, str(exc), 409)
            return result if isinstance(result, Response) else JSON(result)

        return handler

    return bind


def failure(request: Request, message: str, status: int) -> Response:
    """An error for the user: JSON for the API, a page for a browser."""
    if request.url.path.startswith("/api/"):
        return JSON({"error": message}, status_code=status)
    body = f"<!doctype html><title>Tapedeck</title><p>{html.escape(message)}</p>"
    return HTMLResponse(body + "<p><a href='/'>all sessions and runs</a></p>", status_code=status)


def require_token(dashboard: Dashboard, request: Request) -> None:
    """Refuse a state-changing request without this server's token (cross-site requests)."""
    given = request.headers.get("x-tapedeck-token", "")
    if not hmac.compare_digest(given, dashboard.settings.token):
        raise guard.BadRequestError("missing or wrong X-Tapedeck-Token: reload the page")


# --- pages ---------------------------------------------------------------------------------


@handled
def index_page(d: Dashboard, request: Request) -> Response:
    return d.page(request, "index.html", sessions=views.sessions(d.log),
                  runs=views.runs(d.log, d.verifier.get))  # fmt: skip


@handled
def run_page(d: Dashboard, request: Request) -> Response:
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    return d.page(request, "run.html", run=manifest)


def _trace(d: Dashboard, request: Request) -> tuple[RunManifest, str, int, Any]:
    """The run, port and offset a trace URL names (validated), and the trace."""
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    port = guard.port(manifest, request.path_params["port"])
    offset = guard.offset(request.path_params["offset"])
    return manifest, port, offset, views.trace_tree(d.log, manifest.run_id, port, offset,
                                                    d.settings.pipelines)  # fmt: skip


@handled
def trace_page(d: Dashboard, request: Request) -> Response:
    manifest, port, offset, tree = _trace(d, request)
    return d.page(request, "trace.html", run=manifest, port=port, offset=offset, tree=tree)


@handled
def live_page(d: Dashboard, request: Request) -> Response:
    session = guard.session(d.log, request.path_params["session"])
    return d.page(request, "live.html", session=session)


@handled
def query_page(d: Dashboard, request: Request) -> Response:
    return d.page(request, "query.html")


# --- JSON ----------------------------------------------------------------------------------


@handled
def api_runs(d: Dashboard, request: Request) -> Any:
    return views.runs(d.log, d.verifier.get)


@handled
def api_run(d: Dashboard, request: Request) -> Any:
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    return views.run_summary(d.runs.get(manifest), d.verifier.get(manifest.run_id))


@handled
def api_charts(d: Dashboard, request: Request) -> Any:
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    q = request.query_params
    start, end = guard.time_ms(q.get("start"), "start"), guard.time_ms(q.get("end"), "end")
    points = guard.points(q.get("points"), 2000)
    return views.charts(d.runs.get(manifest), start, end, points)


@handled
def api_drift(d: Dashboard, request: Request) -> Any:
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    return views.drift(d.runs.get(manifest))


@handled
def api_trace(d: Dashboard, request: Request) -> Any:
    return _trace(d, request)[3]


@handled
def api_verify_state(d: Dashboard, request: Request) -> Any:
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    job = d.verifier.get(manifest.run_id)
    return {"run_id": manifest.run_id, "state": "none"} if job is None else job.view()


@handled
def api_verify_start(d: Dashboard, request: Request) -> Any:
    require_token(d, request)
    manifest = guard.run_manifest(d.log, request.path_params["run_id"])
    if manifest.status != "complete":
        raise RunError(f"run {manifest.run_id} is still running; verify it once it is complete")
    return d.verifier.start(manifest.run_id).view()


@handled
def api_live(d: Dashboard, request: Request) -> Any:
    session = guard.session(d.log, request.path_params["session"])
    return {**d.watch(session).poll(), "control": d.settings.control}


@handled
def api_control(d: Dashboard, request: Request) -> Any:
    require_token(d, request)
    if not d.settings.control:
        return JSON(
            {"error": "operator commands are off: start `tape serve --control` to allow them"},
            status_code=403,
        )
    session = guard.session(d.log, request.path_params["session"])
    command = request.path_params["command"]
    if command not in COMMANDS:
        raise guard.NotFoundError(f"no command {command[:30]!r}; commands: {', '.join(COMMANDS)}")
    offset = journal(d.log, session, command, d.settings.operator, "")
    return {"session": session, "command": command, "journal_offset": offset}


def api_live_stream(d: Dashboard) -> Handler:
    """Server-sent events: the live status every :data:`LIVE_INTERVAL_SECONDS`."""

    async def stream(request: Request) -> Response:
        return await _live_stream(d, request)

    return stream


async def _live_stream(d: Dashboard, request: Request) -> Response:
    try:
        session = guard.session(d.log, request.path_params["session"])
    except (guard.BadRequestError, guard.NotFoundError) as exc:
        return JSON({"error": str(exc)}, status_code=404)
    watch = d.watch(session)

    async def updates() -> AsyncIterator[dict[str, str]]:
        while True:
            status = await anyio.to_thread.run_sync(watch.poll)
            status["control"] = d.settings.control
            status["served_ms"] = time.time() * 1000
            yield {"event": "status", "data": msgspec.json.encode(status).decode()}
            await asyncio.sleep(LIVE_INTERVAL_SECONDS)

    return EventSourceResponse(updates(), ping=15)


@handled
def api_query(d: Dashboard, request: Request) -> Any:
    require_token(d, request)
    if d.settings.db_url is None:
        raise guard.NotFoundError("no analyst store: start `tape serve --db URL`")
    try:
        sql = str(msgspec.json.decode(request.state.body).get("sql", ""))
    except (msgspec.DecodeError, AttributeError):
        raise guard.BadRequestError('send {"sql": "SELECT ..."} as JSON') from None
    if not sql.strip() or len(sql) > 20000:
        raise guard.BadRequestError("give one SQL statement (at most 20,000 characters)")
    result = run_query(d.settings.db_url, sql)
    frame = result.frame.head(QUERY_ROWS)
    return {
        "columns": frame.columns,
        "rows": [list(r) for r in frame.iter_rows()],
        "total_rows": result.frame.height,
        "seconds": result.seconds,
    }


# --- the application -----------------------------------------------------------------------


SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (plain ASGI: streams pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: WebSettings) -> Starlette:
    """The dashboard for ``settings`` (``tape serve`` runs it under uvicorn)."""
    d = Dashboard(settings)
    r = "/api/runs/{run_id}"
    routes = [
        Route("/", index_page(d)),
        Route("/runs/{run_id}", run_page(d)),
        Route("/runs/{run_id}/trace/{port}/{offset}", trace_page(d)),
        Route("/live/{session}", live_page(d)),
        Route("/query", query_page(d)),
        Route("/api/runs", api_runs(d)),
        Route(r, api_run(d)),
        Route(r + "/charts", api_charts(d)),
        Route(r + "/drift", api_drift(d)),
        Route(r + "/trace/{port}/{offset}", api_trace(d)),
        Route(r + "/verify", api_verify_state(d), methods=["GET"]),
        Route(r + "/verify", api_verify_start(d), methods=["POST"]),
        Route("/api/live/{session}", api_live(d)),
        Route("/api/live/{session}/stream", api_live_stream(d)),
        Route("/api/live/{session}/control/{command}", api_control(d), methods=["POST"]),
        Route("/api/query", api_query(d), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts),
        Middleware(SecurityHeaders),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        d.verifier.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, max_body_size=MAX_BODY)
    app.state.dashboard = d
    return app
