"""The designs of a bundle: which base models read which features (docs/models.md, "Model
layers").

Every model is a CatBoost MultiClass model of the same target, the direction label (down /
flat / up). In a stacked design each base model is fitted on its own feature subset and the
meta-learner reads their out-of-fold probabilities (``<role>.<class>``) and two regime
features: ``two`` (``context``, ``micro``) and ``five`` (the layers DESIGN.md names: regime,
volatility, session, order flow, book). ``merged`` has no base models: its ``meta`` model
reads all 65 features itself. The walk-forward ablation on the GOOG day (docs/models.md) found
``merged`` best out of sample, so it is the default.
"""

from __future__ import annotations

from streams.features import FEATURES

LAYERS: dict[str, dict[str, tuple[str, ...]]] = {
    "merged": {},
    "two": {
        "context": ("volatility", "returns", "temporal"),
        "micro": ("order_flow", "volume", "microstructure", "technical"),
    },
    "five": {
        "regime": ("returns", "technical"),
        "volatility": ("volatility",),
        "session": ("temporal", "volume"),
        "order_flow": ("order_flow",),
        "book": ("microstructure",),
    },
}
"""Layer design -> base role -> the feature groups it reads (none: one merged model)."""
DEFAULT_LAYERS = "merged"
META_FEATURES = ("realized_vol_60s", "spread_bps")
"""Regime inputs of the meta-learner: when volatility or the spread is high, one base model
may be more reliable than another (docs/models.md)."""


def group_columns(groups: tuple[str, ...]) -> list[str]:
    """Feature names of the given groups, in vector order."""
    return [f.name for f in FEATURES if f.group in groups]


def base_columns(layers: str) -> dict[str, list[str]]:
    """Base role -> its input feature names, for a layer design."""
    return {role: group_columns(groups) for role, groups in LAYERS[layers].items()}


def meta_columns(layers: str) -> list[str]:
    """The meta model's inputs: every base model's probabilities, then the regime features;
    without base models, all 65 features."""
    if not LAYERS[layers]:
        return [f.name for f in FEATURES]
    classes = ("down", "flat", "up")
    return [f"{role}.{c}" for role in LAYERS[layers] for c in classes] + list(META_FEATURES)
