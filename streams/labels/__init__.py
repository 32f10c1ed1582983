"""The ``labels`` processor: the mid's realised direction over a horizon, in event time."""

from streams.labels.stage import LABELS_STAGE, LabelsConfig, LabelsStage, labels_defaults

__all__ = ["LABELS_STAGE", "LabelsConfig", "LabelsStage", "labels_defaults"]
