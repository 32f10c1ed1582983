"""The ``book`` processor: L3 orders and L2 levels from market records, top-N out."""

from streams.book.processor import (
    PROCESSOR_ID,
    STATE_VERSION,
    BookConfig,
    BookProcessor,
    book_config,
    described,
)

__all__ = [
    "PROCESSOR_ID",
    "STATE_VERSION",
    "BookConfig",
    "BookProcessor",
    "book_config",
    "described",
]
