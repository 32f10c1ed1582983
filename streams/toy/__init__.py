"""The toy strategy of the comparable benchmark (bench/toy_lobster.py, docs/toy-benchmark.md)."""

from streams.toy.stage import TOY_STAGE, ToyConfig, ToyStage, toy_defaults

__all__ = ["TOY_STAGE", "ToyConfig", "ToyStage", "toy_defaults"]
