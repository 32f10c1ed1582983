"""The ``consensus`` processor: models and agents weighted into one decision (docs/agents.md)."""

from streams.consensus.config import ConsensusConfig
from streams.consensus.stage import CONSENSUS_STAGE, DECISIONS_PORT, ConsensusStage

__all__ = ["CONSENSUS_STAGE", "DECISIONS_PORT", "ConsensusConfig", "ConsensusStage"]
