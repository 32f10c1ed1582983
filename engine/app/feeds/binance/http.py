"""REST transport: Binance's depth snapshot, as raw bytes (the converter reads them)."""

from __future__ import annotations

import aiohttp


class SnapshotError(Exception):
    """A depth snapshot could not be fetched; the feed retries."""


async def fetch_snapshot(
    session: aiohttp.ClientSession, url: str, symbol: str, limit: int, timeout: float
) -> bytes:
    """``GET url?symbol=..&limit=..``: the response body of a depth snapshot."""
    try:
        async with session.get(
            url,
            params={"symbol": symbol, "limit": str(limit)},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SnapshotError(f"depth snapshot from {url}: {exc or type(exc).__name__}") from exc
    if response.status != 200:
        raise SnapshotError(
            f"depth snapshot from {url}: HTTP {response.status}: "
            f"{body[:200].decode(errors='replace')}"
        )
    return body
