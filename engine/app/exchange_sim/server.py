"""The simulator's HTTP and WebSocket endpoints (aiohttp), on loopback only.

* ``GET /api/v3/depth?symbol=..&limit=..`` (spot) or ``GET /fapi/v1/depth`` (USD-M): the
  depth snapshot, as Binance's REST API answers it.
* ``GET /stream?streams=<symbol>@depth@100ms/<symbol>@trade/<symbol>@bookTicker``: Binance's
  combined stream; each recorded message goes out as one text frame, byte for byte. Requests
  over the socket (``{"method": "LIST_SUBSCRIPTIONS"|"SUBSCRIBE"|"UNSUBSCRIBE", ...}``) are
  answered as Binance does.
* ``GET /control``: the tape's status as JSON; ``POST /control`` with
  ``{"fault": "drop", "count": 5}`` (or ``close``, ``stall`` with ``seconds``, ``malformed``)
  injects a fault before the next message, and ``{"speed": 10}`` (or ``"max"``) changes the
  pace from the next message on.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

import msgspec
from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from engine.app.exchange_sim.exchange import END_REASON, Client, Exchange
from engine.app.exchange_sim.faults import FaultError, from_json
from engine.app.feeds.binance.config import DEPTH_PATHS
from engine.app.ingest import binance_messages as m

MAX_LIMIT = 5000
DEFAULT_LIMIT = 100
"""Binance's default number of levels a side when ``limit`` is not given."""


class NotLoopbackError(ValueError):
    """The simulator only listens on loopback addresses."""


def check_loopback(host: str) -> None:
    """Refuse any address that is not on this machine's loopback."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopbackError(
            f"--host {host!r} is not a loopback address; the exchange simulator listens on "
            "127.0.0.1, ::1 or localhost only"
        )


def _error(status: int, code: int, msg: str) -> web.Response:
    """A Binance-style error body."""
    return web.json_response({"code": code, "msg": msg}, status=status)


def make_app(exchange: Exchange) -> web.Application:
    """The aiohttp application serving ``exchange``."""
    app = web.Application()
    app.router.add_get(DEPTH_PATHS[exchange.recording.market], _depth_handler(exchange))
    app.router.add_get("/stream", _stream_handler(exchange))
    app.router.add_get("/control", _status_handler(exchange))
    app.router.add_post("/control", _fault_handler(exchange))
    return app


def _depth_handler(exchange: Exchange) -> Handler:
    async def depth(request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol", "")
        if symbol != exchange.recording.symbol:
            return _error(400, -1121, "Invalid symbol.")
        try:
            limit = int(request.query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _error(400, -1100, "Illegal characters found in parameter 'limit'.")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, -1100, f"limit must be in 1..{MAX_LIMIT}")
        body = await exchange.snapshot(limit)
        return web.Response(body=body, content_type="application/json")

    return depth


def parse_streams(text: str) -> set[tuple[str, str]]:
    """``btcusdt@depth@100ms/btcusdt@trade`` as {(symbol, kind)}; unknown streams are left out."""
    wanted = set()
    for name in text.split("/"):
        kind = m.stream_kind(name)
        if kind is not None:
            wanted.add((name.partition("@")[0], kind))
    return wanted


def _stream_handler(exchange: Exchange) -> Handler:
    async def stream(request: web.Request) -> web.StreamResponse:
        names = request.query.get("streams", "")
        wanted = parse_streams(names)
        if not wanted:
            return _error(400, -1100, f"no depth, trade or bookTicker stream in {names!r}")
        ws = web.WebSocketResponse(compress=False, autoping=False)
        await ws.prepare(request)
        if exchange.status.done:
            await ws.close(code=1000, message=END_REASON.encode())
            return ws

        async def send(body: bytes) -> None:
            kind = WSMsgType.TEXT if _is_text(body) else WSMsgType.BINARY
            await ws.send_frame(body, kind)

        async def close(code: int, reason: str) -> None:
            await ws.close(code=code, message=reason.encode())

        client = Client(wanted, send, close, ws.ping)
        exchange.join(client)
        try:
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    await ws.send_str(_answer(client, names, frame.data))
                    exchange.fence()
                elif frame.type is WSMsgType.PING:
                    await ws.pong(frame.data)
                elif frame.type is WSMsgType.PONG:
                    client.ponged.set()
        finally:
            exchange.leave(client)
        return ws

    return stream


def _is_text(body: bytes) -> bool:
    if body.isascii():
        return True
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _answer(client: Client, names: str, text: str) -> str:
    """Binance's answer to a request sent over the stream."""
    try:
        request = msgspec.json.decode(text)
    except msgspec.DecodeError:
        request = None
    if not isinstance(request, dict) or "method" not in request:
        return '{"error":{"code":3,"msg":"Invalid JSON: expected a request object"}}'
    method, ident, params = request["method"], request.get("id"), request.get("params") or []
    if method == "LIST_SUBSCRIPTIONS":
        subscribed = [n for n in names.split("/") if m.stream_kind(n) is not None]
        return msgspec.json.encode({"result": subscribed, "id": ident}).decode()
    if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list):
        change = parse_streams("/".join(str(p) for p in params))
        client.wanted = client.wanted | change if method == "SUBSCRIBE" else client.wanted - change
        return msgspec.json.encode({"result": None, "id": ident}).decode()
    return msgspec.json.encode(
        {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": ident}
    ).decode()


def _status_handler(exchange: Exchange) -> Handler:
    async def status(request: web.Request) -> web.StreamResponse:
        body = asdict(exchange.status) | {"clients": len(exchange.clients)}
        return web.json_response(body)

    return status


def _fault_handler(exchange: Exchange) -> Handler:
    async def fault(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            if isinstance(body, dict) and "speed" in body:
                return _pace(exchange, body["speed"])
            parsed = from_json(body)
        except (FaultError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        exchange.post(parsed)
        return web.json_response({"accepted": str(parsed)})

    return fault


def _pace(exchange: Exchange, speed: object) -> web.Response:
    """``{"speed": X}`` (times the recorded pace) or ``{"speed": "max"}``."""
    if speed == "max":
        exchange.pace(None)
    elif isinstance(speed, int | float) and speed > 0:
        exchange.pace(float(speed))
    else:
        raise FaultError(f'speed must be a positive number or "max", got {speed!r}')
    return web.json_response({"accepted": f"speed {speed}"})


@dataclass(frozen=True)
class Urls:
    """Where a running simulator listens."""

    ws: str
    rest: str

    def __str__(self) -> str:
        return f"ws-url={self.ws} rest-url={self.rest}"


@asynccontextmanager
async def serving(
    exchange: Exchange, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Urls]:
    """Serve ``exchange`` on ``host:port`` (0: any free port) and replay its tape meanwhile."""
    check_loopback(host)
    runner = web.AppRunner(make_app(exchange), access_log=None)
    await runner.setup()
    tape: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        address = runner.addresses[0]
        bound_host = f"[{address[0]}]" if ":" in str(address[0]) else str(address[0])
        tape = asyncio.create_task(exchange.run(), name="exchange-sim-tape")
        yield Urls(f"ws://{bound_host}:{address[1]}", f"http://{bound_host}:{address[1]}")
    finally:
        if tape is not None:
            tape.cancel()
        await runner.cleanup()
