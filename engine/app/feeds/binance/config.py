"""Where a Binance feed connects and how it behaves; Binance's public endpoints by default."""

from __future__ import annotations

from dataclasses import dataclass

PUBLIC_ENDPOINTS = {
    "spot": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "usdm": ("wss://fstream.binance.com", "https://fapi.binance.com"),
}
"""(WebSocket base, REST base) of Binance's public market data, per market."""
DEPTH_PATHS = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}
END_OF_RECORDING = "end of recording"
"""Close reason of a stream that has nothing more to send: the exchange simulator's, when it
has replayed its whole recording (``FeedConfig.end_with_feed`` ends the feed on it)."""


@dataclass(frozen=True)
class FeedConfig:
    """One instrument's feed. URLs default to Binance's public endpoints for the market."""

    symbol: str
    """Venue symbol, upper case (``BTCUSDT``)."""
    market: str = "spot"
    """``spot`` or ``usdm`` (USD-M futures)."""
    ws_url: str | None = None
    rest_url: str | None = None
    depth_limit: int = 1000
    """Levels a side in each REST snapshot."""
    depth_speed: str = "100ms"
    """Update speed of the diff depth stream (``<symbol>@depth@100ms``)."""
    backoff_initial: float = 0.1
    """Seconds before the first reconnect attempt; doubles per failed attempt..."""
    backoff_max: float = 5.0
    """...up to this."""
    snapshot_timeout: float = 10.0
    """Seconds a REST snapshot (and its fence) may take before it is retried."""
    end_with_feed: bool = False
    """End the feed when the venue closes the stream saying the recording ended (the exchange
    simulator's close reason), instead of reconnecting."""

    def __post_init__(self) -> None:
        if self.market not in PUBLIC_ENDPOINTS:
            raise ValueError(f"market must be spot or usdm, got {self.market!r}")
        for name, url, schemes in (
            ("--ws-url", self.ws_url, ("ws://", "wss://")),
            ("--rest-url", self.rest_url, ("http://", "https://")),
        ):
            if url is not None and not url.startswith(schemes):
                raise ValueError(f"{name} must start with {' or '.join(schemes)}, got {url!r}")

    @property
    def streams(self) -> list[str]:
        """The combined-stream names subscribed to: diff depth, trades, book ticker."""
        lower = self.symbol.lower()
        return [f"{lower}@depth@{self.depth_speed}", f"{lower}@trade", f"{lower}@bookTicker"]

    @property
    def stream_url(self) -> str:
        """The combined-stream URL to connect to."""
        base = (PUBLIC_ENDPOINTS[self.market][0] if self.ws_url is None else self.ws_url).rstrip(
            "/"
        )
        return f"{base}/stream?streams={'/'.join(self.streams)}"

    @property
    def depth_url(self) -> str:
        """The REST depth-snapshot URL (without the query)."""
        base = (
            PUBLIC_ENDPOINTS[self.market][1] if self.rest_url is None else self.rest_url
        ).rstrip("/")
        return base + DEPTH_PATHS[self.market]
