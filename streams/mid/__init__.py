"""The ``mid`` processor: mid, microprice, spread and return variance from the book's top."""

from streams.mid.processor import MID_STAGE, MidConfig, MidStage

__all__ = ["MID_STAGE", "MidConfig", "MidStage"]
