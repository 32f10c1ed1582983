"""The ``features`` processor: 65 features in seven groups, in event time (docs/features.md)."""

from streams.features.schema import FEATURE_SCHEMA_VERSION, FEATURES, INDEX, NAMES, FeatureSpec
from streams.features.stage import FEATURES_STAGE, FeaturesConfig, FeaturesStage

__all__ = [
    "FEATURES",
    "FEATURES_STAGE",
    "FEATURE_SCHEMA_VERSION",
    "INDEX",
    "NAMES",
    "FeatureSpec",
    "FeaturesConfig",
    "FeaturesStage",
]
