"""Training CatBoost bundles from the log (``tape train``); see docs/models.md."""

from engine.training.data import Cutoff, TrainError
from engine.training.train import TrainOptions, TrainResult, train

__all__ = ["Cutoff", "TrainError", "TrainOptions", "TrainResult", "train"]
