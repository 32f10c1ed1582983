"""The ``models`` processor: CatBoost bundle inference and an online river model."""

from streams.models.stage import MODELS_STAGE, ONLINE_FEATURES, ModelsConfig, ModelsStage

__all__ = ["MODELS_STAGE", "ONLINE_FEATURES", "ModelsConfig", "ModelsStage"]
