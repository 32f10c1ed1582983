"""WebSocket transport: one combined-stream connection, frames in as bytes, requests out."""

from __future__ import annotations

import aiohttp

from engine.app.feeds.binance.schemas import REQUEST, Request

MAX_FRAME = 16 * 1024 * 1024


async def connect(
    session: aiohttp.ClientSession, url: str, timeout: float
) -> aiohttp.ClientWebSocketResponse[bool]:
    """Open the stream. The venue's pings are answered as they are read (Binance requires it);
    text frames are handed over as bytes, undecoded (the converter reads bytes)."""
    return await session.ws_connect(
        url,
        autoping=True,
        compress=0,
        max_msg_size=MAX_FRAME,
        decode_text=False,
        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout),
    )


async def send_request(ws: aiohttp.ClientWebSocketResponse[bool], method: str, ident: int) -> None:
    """Send ``{"method": method, "id": ident}`` over the stream."""
    await ws.send_str(REQUEST.encode(Request(method, ident)).decode())
