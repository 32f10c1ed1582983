"""Training CatBoost bundles from the log (``tape train``); see docs/models.md."""

from engine.app.training.data import Cutoff, TrainError
from engine.app.training.train import TrainOptions, TrainResult, train

__all__ = ["Cutoff", "TrainError", "TrainOptions", "TrainResult", "train"]
