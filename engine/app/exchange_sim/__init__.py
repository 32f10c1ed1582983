"""``tape exchange-sim``: a local server speaking Binance's public market-data protocol from a
recording (REST depth snapshots, the combined WebSocket stream), at recorded pace, faster, or
as fast as the client reads, with faults on demand. It serves the tests, the benchmarks and
the replay-as-live demo, on loopback only (docs/live.md)."""

from engine.app.exchange_sim.background import BackgroundSim
from engine.app.exchange_sim.exchange import END_REASON, Exchange, Status
from engine.app.exchange_sim.faults import Fault, FaultError, parse
from engine.app.exchange_sim.recording import Recording, load
from engine.app.exchange_sim.server import NotLoopbackError, Urls, serving

__all__ = [
    "END_REASON",
    "BackgroundSim",
    "Exchange",
    "Fault",
    "FaultError",
    "NotLoopbackError",
    "Recording",
    "Status",
    "Urls",
    "load",
    "parse",
    "serving",
]
