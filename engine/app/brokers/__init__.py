"""The broker boundary: orders leave the pipeline through the order gateway to a broker, and
everything the broker answers comes back into the session journal (docs/live.md).

:mod:`.base` is the interface a broker adapter implements, :mod:`.gateway` the order gateway,
:mod:`.paper` the paper broker (fills against the live book with the simulated venue's rules
and a latency model) and :mod:`.choose` picks one, refusing real money unless told twice.
"""

from engine.app.brokers.base import Broker, ReportSink
from engine.app.brokers.choose import BrokerRefusedError, LiveMoney, choose_broker
from engine.app.brokers.gateway import OrderGateway
from engine.app.brokers.paper import PaperBroker

__all__ = [
    "Broker",
    "BrokerRefusedError",
    "LiveMoney",
    "OrderGateway",
    "PaperBroker",
    "ReportSink",
    "choose_broker",
]
