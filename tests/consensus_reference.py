"""A plain-Python reference of the ``consensus`` processor, written from docs/agents.md.

It shares no code with the stage: a list for the pending calls, dicts for the shares, the
documented formulas in the same floating-point order, so the stage must match it exactly.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.events.decisions import AGENTS, CONTRIBUTORS

NAN = math.nan
GROUPS = (CONTRIBUTORS[:2], AGENTS)


@dataclass
class Decision:
    cause: int
    direction: int
    flags: int
    confidence: float
    score: float
    model_score: float
    agent_score: float
    votes: list[int]
    confidences: list[float]
    weights: list[float]


@dataclass
class ConsensusReference:
    """Decides vectors and learns from labels, given as events in offset order."""

    settings: dict[str, Any]
    accuracy: dict[str, float] = field(default_factory=dict)
    pending: deque[tuple[int, list[int]]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        s = self.settings
        self.accuracy = dict.fromkeys(CONTRIBUTORS, float(s["accuracy_prior"]))
        self.alpha = 1.0 - 2.0 ** (-1.0 / s["accuracy_halflife"])
        self.share = {}
        for group in GROUPS:
            total = sum(s["shares"][n] for n in group)
            for name in group:
                self.share[name] = s["shares"][name] / total

    def label(self, origin: int, label: int, undefined: bool) -> None:
        while self.pending and self.pending[0][0] < origin:
            self.pending.popleft()
        if not self.pending or self.pending[0][0] != origin:
            return
        _, calls = self.pending.popleft()
        if undefined:
            return
        for name, call in zip(CONTRIBUTORS, calls, strict=True):
            if call != 0:
                hit = 1.0 if call == label else 0.0
                self.accuracy[name] = self.accuracy[name] + self.alpha * (hit - self.accuracy[name])

    def decide(self, cause: int, warming: bool, meta: Any, online: Any, votes: Any) -> Decision:
        """``meta``/``online``: triples (or None); ``votes``: (vote, confidence, no_data) x 4."""
        calls: dict[str, tuple[int, float] | None] = {}
        for name, triple in (("meta", meta), ("online", online)):
            if triple is None or any(math.isnan(p) for p in triple):
                calls[name] = None
            else:
                down, flat, up = triple
                calls[name] = (
                    (1, up) if up > down and up > flat else (-1, down) if down > up and down > flat
                    else (0, flat)
                )  # fmt: skip
        for name, agent in zip(AGENTS, votes or [None] * 4, strict=True):
            calls[name] = None if agent is None or agent[2] else (agent[0], agent[1])
        weights = self._weights(calls)
        parts, mass = [0.0, 0.0], [0.0, 0.0]
        for g, group in enumerate(GROUPS):
            for name in group:
                call = calls[name]
                if weights[name] > 0.0 and call is not None:
                    parts[g] += weights[name] * call[0] * call[1]
                    mass[g] += weights[name]
        score = parts[0] + parts[1]
        direction = (1 if score > 0 else -1) if abs(score) > self.settings["dead_band"] else 0
        if warming:
            direction = 0
        self.pending.append((cause, [c[0] if c else 0 for c in calls.values()]))
        return Decision(
            cause,
            direction,
            1 if warming else 0,
            abs(score) if direction != 0 else 0.0,
            score,
            parts[0] / mass[0] if mass[0] > 0 else NAN,
            parts[1] / mass[1] if mass[1] > 0 else NAN,
            [c[0] if c else 0 for c in calls.values()],
            [c[1] if c else NAN for c in calls.values()],
            [weights[n] for n in CONTRIBUTORS],
        )

    def _weights(self, calls: dict[str, Any]) -> dict[str, float]:
        s = self.settings
        adapt, floor = s["adapt"], s["accuracy_floor"]
        raw = dict.fromkeys(CONTRIBUTORS, 0.0)
        group_raw, group_share, split = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
        for g, group in enumerate(GROUPS):
            for name in group:
                if calls[name] is not None:
                    f = max(self.accuracy[name], floor) if adapt != "none" else 1.0
                    raw[name] = self.share[name] * f
                    group_raw[g] += raw[name]
                    group_share[g] += self.share[name]
            if group_raw[g] > 0.0:
                split[g] = (s["model_weight"], s["agent_weight"])[g]
                if adapt == "all":
                    split[g] *= group_raw[g] / group_share[g]
        total = split[0] + split[1]
        weights = dict.fromkeys(CONTRIBUTORS, 0.0)
        if total == 0.0:
            return weights
        for g, group in enumerate(GROUPS):
            for name in group:
                if raw[name] > 0.0:
                    weights[name] = split[g] / total * raw[name] / group_raw[g]
        return weights


def replay(
    settings: dict[str, Any],
    vectors: np.ndarray[Any, Any],
    predictions: np.ndarray[Any, Any],
    votes: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
) -> list[Decision]:
    """The reference's decisions for a run's topics (labels first at one offset)."""
    ref = ConsensusReference(settings)
    preds = {int(p["cause"]): p for p in predictions}
    agent_votes = {int(v["cause"]): v for v in votes}
    out, j = [], 0
    for v in vectors:
        cause = int(v["cause"])
        while j < len(labels) and int(labels[j]["cause"]) <= cause:
            lab = labels[j]
            ref.label(int(lab["origin"]), int(lab["label"]), bool(lab["flags"] & 1))
            j += 1
        p = preds.get(cause)
        a = agent_votes.get(cause)
        rows = (
            [(int(a["votes"][i]), float(a["confidence"][i]), bool(a["reasons"][i] & 1))
             for i in range(4)]
            if a is not None else None
        )  # fmt: skip
        meta = tuple(p["meta"].tolist()) if p is not None else None
        online = tuple(p["online"].tolist()) if p is not None else None
        out.append(ref.decide(cause, bool(v["flags"] & 1), meta, online, rows))
    return out
