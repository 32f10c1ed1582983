"""The ``agents`` processor: order flow, liquidity, tape reading and footprint (docs/agents.md)."""

from streams.agents.config import AgentsConfig
from streams.agents.rules import AGENT_RULES, reason_names
from streams.agents.stage import AGENTS_STAGE, VOTES_PORT, AgentsStage

__all__ = [
    "AGENTS_STAGE",
    "AGENT_RULES",
    "VOTES_PORT",
    "AgentsConfig",
    "AgentsStage",
    "reason_names",
]
