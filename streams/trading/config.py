"""The ``trading`` stage's config: risk, execution and portfolio settings, defaults per venue."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.events.control import InstrumentSpec
from engine.runtime.topology import ConfigError, typed_config
from streams.trading import risk
from streams.trading.execution import QUEUE_MODELS, VENUES, ExecutionConfig
from streams.trading.portfolio import PortfolioConfig

VENUE_FEES = {
    "BINANCE-SPOT": (10.0, 10.0),
    "BINANCE-USDM": (2.0, 5.0),
    "NASDAQ": (0.0, 0.1),
    "B3": (0.1, 0.1),
}
"""(maker, taker) fee in basis points of notional per venue (docs/trading.md says why)."""
CONTRACT_MULTIPLIERS = {("B3", "WDO"): 10.0, ("B3", "DOL"): 50.0}
"""Quote currency per price point per contract, by (venue, symbol prefix)."""
ORDER_ID_VENUES = ("NASDAQ",)
"""Venues whose journals carry order ids (L3), so queues are tracked exactly (FIFO)."""


@dataclass(frozen=True)
class TradingConfig(risk.RiskConfig, ExecutionConfig, PortfolioConfig):
    """Every setting of the ``trading`` stage: the risk, execution and portfolio sections
    (each field is documented where its section declares it; docs/trading.md lists all)."""


def contract_multiplier(spec: InstrumentSpec) -> float:
    """Quote currency per price point per unit of size: the contract's point value."""
    for (venue, prefix), multiplier in CONTRACT_MULTIPLIERS.items():
        if spec.venue == venue and spec.symbol.startswith(prefix):
            return multiplier
    return 1.0


def trading_defaults(spec: InstrumentSpec) -> dict[str, Any]:
    """The stage's config for an instrument: venue fees, contract multiplier, lot, queue."""
    maker, taker = VENUE_FEES.get(spec.venue, (0.0, 0.0))
    config = TradingConfig(
        lot_size=max(spec.lot_size, 1),
        maker_fee_bp=maker,
        taker_fee_bp=taker,
        queue_model="fifo" if spec.venue in ORDER_ID_VENUES else "trades",
        contract_multiplier=contract_multiplier(spec),
    )
    return dataclasses.asdict(config)


def trading_config(stage_id: str, config: dict[str, Any]) -> TradingConfig:
    """``config`` as a :class:`TradingConfig`; a bad value raises :class:`ConfigError`."""
    parsed: TradingConfig = typed_config(TradingConfig, stage_id, config)
    problems = risk.validate(parsed)
    if parsed.latency_ms < 0:
        problems.append(f"latency_ms must be >= 0, got {parsed.latency_ms}")
    for key in ("maker_fee_bp", "taker_fee_bp"):
        if not -100.0 <= getattr(parsed, key) <= 1000.0:
            problems.append(f"{key} must be in -100..1000 basis points, got {getattr(parsed, key)}")
    if parsed.queue_model not in QUEUE_MODELS:
        problems.append(f"queue_model must be one of {QUEUE_MODELS}, got {parsed.queue_model!r}")
    if parsed.venue not in VENUES:
        problems.append(f"venue must be one of {VENUES}, got {parsed.venue!r}")
    if parsed.venue == "broker" and not parsed.account:
        problems.append('venue = "broker" needs the account (run id) whose reports it takes')
    if not parsed.starting_equity > 0:
        problems.append(f"starting_equity must be > 0, got {parsed.starting_equity}")
    if not parsed.contract_multiplier > 0:
        problems.append(f"contract_multiplier must be > 0, got {parsed.contract_multiplier}")
    if parsed.mark_interval_ms <= 0:
        problems.append(f"mark_interval_ms must be > 0, got {parsed.mark_interval_ms}")
    if problems:
        raise ConfigError(f"stage {stage_id!r}: " + "; ".join(problems))
    return parsed
