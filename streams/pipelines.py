"""The pipelines Tapedeck ships, registered by name for ``tape run --pipeline``."""

from __future__ import annotations

from engine.runtime.topology import Pipeline, register
from streams.book.stage import BOOK_STAGE
from streams.features import FEATURES_STAGE
from streams.labels import LABELS_STAGE
from streams.mid import MID_STAGE

BOOK = register(
    Pipeline("book", (BOOK_STAGE,), doc="the order book alone: top 10 levels after each change")
)
DEFAULT = register(
    Pipeline(
        "default",
        (BOOK_STAGE, MID_STAGE),
        doc="order book, then mid / microprice / return variance",
    )
)
FEATURES = register(
    Pipeline(
        "features",
        (BOOK_STAGE, MID_STAGE, FEATURES_STAGE),
        doc="order book, mid, then the 65 features (docs/features.md) at the configured cadence",
    )
)
LABELS = register(
    Pipeline(
        "labels",
        (BOOK_STAGE, MID_STAGE, FEATURES_STAGE, LABELS_STAGE),
        doc="order book, mid, the 65 features, then a label per vector when it matures "
        "(docs/models.md): the training data of `tape train`",
    )
)

# -- the comparable benchmark (bench/toy_lobster.py, docs/toy-benchmark.md) -------------------

from streams.toy import TOY_STAGE  # noqa: E402
from streams.trading.venue_stage import EXECUTION_STAGE  # noqa: E402

TOY = register(
    Pipeline(
        "toy",
        (BOOK_STAGE, MID_STAGE, TOY_STAGE, EXECUTION_STAGE),
        doc="order book, mid, the toy strategy (EMA of mid and L1 imbalance -> market orders) "
        "and the simulated venue; book and mid are not written (the benchmark pipeline)",
        transient=("book", "mid"),
    )
)
