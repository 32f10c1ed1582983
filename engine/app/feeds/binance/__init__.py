"""Binance spot and USD-M futures market data over Binance's public WebSocket and REST APIs.

Split by job, as NautilusTrader's venue adapters are: :mod:`.config` (endpoints and
settings), :mod:`.schemas` (the venue's request and response JSON), :mod:`.parsing` (received
frames to journal items, through the importer's converter), :mod:`.http` and
:mod:`.websocket` (transport only) and :mod:`.client` (the data client: Binance's local order
book procedure, gaps, reconnects).
"""

from engine.app.feeds.binance.client import BinanceFeed, FeedSink
from engine.app.feeds.binance.config import FeedConfig
from engine.app.feeds.binance.resume import FeedResume, resume_from_journal

__all__ = ["BinanceFeed", "FeedConfig", "FeedResume", "FeedSink", "resume_from_journal"]
