"""Model artifacts: the content-addressed store, bundles and their model cards."""

from engine.models.bundle import ModelSource, configured_bundles, load_card, run_models
from engine.models.card import (
    CLASS_NAMES,
    ROLES,
    CardError,
    ClassScores,
    Member,
    Metrics,
    ModelCard,
    Rows,
    TrainingData,
    decode_card,
    encode_card,
)
from engine.models.store import ModelStore, ModelStoreError, digest

__all__ = [
    "CLASS_NAMES",
    "ROLES",
    "CardError",
    "ClassScores",
    "Member",
    "Metrics",
    "ModelCard",
    "ModelSource",
    "ModelStore",
    "ModelStoreError",
    "Rows",
    "TrainingData",
    "configured_bundles",
    "decode_card",
    "digest",
    "encode_card",
    "load_card",
    "run_models",
]
