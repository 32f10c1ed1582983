"""Settings of the ``consensus`` processor: weights, dead band and how weights adapt."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events.decisions import AGENTS, CONTRIBUTORS
from engine.runtime.topology import ConfigError, typed_config
from streams.consensus import kernel as k

STAGE = "consensus"
ADAPT = {"none": k.ADAPT_NONE, "within": k.ADAPT_WITHIN, "all": k.ADAPT_ALL}
DEFAULT_SHARES = {
    "meta": 0.5,
    "online": 0.5,
    "order_flow": 0.30,
    "liquidity": 0.20,
    "tape_reading": 0.25,
    "footprint": 0.25,
}
"""Each contributor's share of its group (models: meta, online; agents: the four)."""


@dataclass(frozen=True)
class ConsensusConfig:
    """Settings of the ``consensus`` processor."""

    model_weight: float = 0.6
    """The models' part of the decision (meta-learner and online model together)."""
    agent_weight: float = 0.4
    """The agents' part; ``model_weight + agent_weight`` must be 1."""
    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    """Each contributor's base share within its group, normalised per group."""
    dead_band: float = 0.1
    """``|score|`` at or below which the decision is flat."""
    adapt: str = "within"
    """``none`` (base weights), ``within`` (re-weight inside each group by accuracy, keep the
    group split) or ``all`` (the group split adapts too)."""
    accuracy_prior: float = 0.5
    """Every contributor's accuracy before its first scored call."""
    accuracy_halflife: float = 100.0
    """Scored calls after which an old call's weight in the accuracy EWMA has halved."""
    accuracy_floor: float = 0.05
    """Accuracy below which a contributor's weight stops shrinking (never zero)."""
    max_pending: int = 65536
    """Decided vectors kept waiting for their label; beyond it the oldest go unscored."""


def defaults() -> dict[str, Any]:
    """The default settings as a plain dict (the same for every instrument)."""
    return dataclasses.asdict(ConsensusConfig())


def load(config: dict[str, Any]) -> ConsensusConfig:
    """``config`` as a validated :class:`ConsensusConfig`."""
    c: ConsensusConfig = typed_config(ConsensusConfig, STAGE, config)
    weights = (c.model_weight, c.agent_weight)
    if not all(math.isfinite(w) and w >= 0 for w in weights) or abs(sum(weights) - 1) > 1e-9:
        raise ConfigError(
            f"stage {STAGE!r}: model_weight and agent_weight must be >= 0 and sum to 1, got "
            f"{c.model_weight} and {c.agent_weight}"
        )
    if sorted(c.shares) != sorted(CONTRIBUTORS):
        raise ConfigError(
            f"stage {STAGE!r}: shares must name every contributor exactly "
            f"({', '.join(CONTRIBUTORS)}), got {', '.join(sorted(c.shares)) or 'none'}"
        )
    for group in (CONTRIBUTORS[:2], AGENTS):
        values = [c.shares[n] for n in group]
        if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
            raise ConfigError(
                f"stage {STAGE!r}: shares of {', '.join(group)} must be >= 0 with a positive "
                f"sum, got {values}"
            )
    _check(0 <= c.dead_band < 1, "dead_band", "in [0, 1)", c.dead_band)
    _check(c.adapt in ADAPT, "adapt", f"one of {', '.join(map(repr, ADAPT))}", c.adapt)
    _check(0 <= c.accuracy_prior <= 1, "accuracy_prior", "in [0, 1]", c.accuracy_prior)
    _check(c.accuracy_halflife > 0, "accuracy_halflife", "> 0", c.accuracy_halflife)
    _check(0 < c.accuracy_floor <= 1, "accuracy_floor", "in (0, 1]", c.accuracy_floor)
    _check(c.max_pending >= 1, "max_pending", ">= 1", c.max_pending)
    return c


def _check(ok: bool, key: str, allowed: str, got: Any) -> None:
    if not ok or (isinstance(got, float) and not math.isfinite(got)):
        raise ConfigError(f"stage {STAGE!r}: {key} must be {allowed}, got {got!r}")


def params(c: ConsensusConfig) -> np.ndarray[Any, Any]:
    """The kernel's parameter array ``p``."""
    p = np.zeros(k.N_P + k.N, np.float64)
    p[k.P_MODEL], p[k.P_AGENT] = c.model_weight, c.agent_weight
    p[k.P_DEAD_BAND] = c.dead_band
    p[k.P_ALPHA] = 1.0 - 2.0 ** (-1.0 / c.accuracy_halflife)
    p[k.P_FLOOR] = c.accuracy_floor
    p[k.P_ADAPT] = ADAPT[c.adapt]
    for group in (CONTRIBUTORS[:2], AGENTS):
        total = sum(c.shares[n] for n in group)
        for name in group:
            p[k.N_P + CONTRIBUTORS.index(name)] = c.shares[name] / total
    return p
