"""Training CatBoost bundles from the log (``tape train``); see docs/models.md."""

from engine.app.training.data import Cutoff, TrainError
from engine.app.training.split import Windows
from engine.app.training.train import TrainOptions, TrainResult, train
from engine.app.training.walkforward import WalkForwardResult, train_walk_forward

__all__ = [
    "Cutoff",
    "TrainError",
    "TrainOptions",
    "TrainResult",
    "WalkForwardResult",
    "Windows",
    "train",
    "train_walk_forward",
]
