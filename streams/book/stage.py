"""The ``book`` processor as a pipeline stage (``engine.runtime`` drives it).

Inputs: the journal's market records. Outputs: port ``book``, ``book.top`` records whose
``offset`` field is the causing journal offset. State, guarantees: see
:mod:`streams.book.processor`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.events.book import BOOK_TOP
from engine.events.control import BookDescribed, InstrumentSpec
from engine.runtime.processor import Output, Port, Slice, StageContext
from engine.runtime.topology import Stage, typed_config
from streams.book.kernel import M_UPDATE_ID
from streams.book.processor import BookConfig, BookProcessor, book_config

BOOK_PORT = Port("book", BOOK_TOP, cause="offset")


class BookStage:
    """Rebuilds the book from each market slice; of the low-rate events only
    ``feed.book_described`` touches it (the source's depth and whether quotes are the book)."""

    def __init__(self, context: StageContext) -> None:
        self.book = BookProcessor(typed_config(BookConfig, "book", context.config))

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """The ``book.top`` records the slice's messages produced."""
        if piece.market is None:
            for event in piece.control:
                if isinstance(event, BookDescribed):
                    self.book.describe(event)
            return (BOOK_PORT.empty(),)
        return (self.book.process(piece.market, piece.start),)

    def snapshot(self) -> bytes:
        """The book's state (see ``BookProcessor.snapshot``)."""
        return self.book.snapshot()

    def restore(self, state: bytes) -> None:
        """Continue from a state :meth:`snapshot` produced."""
        self.book = BookProcessor.restore(state)

    def inspect(self) -> dict[str, Any]:
        """Status, update id, depth, open orders and the best five levels a side."""
        book = self.book
        return {
            "status": book.status,
            "update_id": int(book.meta[M_UPDATE_ID]),
            "bid_levels": len(book.levels(1)),
            "ask_levels": len(book.levels(-1)),
            "open_orders": len(book.orders()),
            "bids": book.levels(1)[:5],
            "asks": book.levels(-1)[:5],
        }


def _defaults(spec: InstrumentSpec) -> dict[str, Any]:
    return dataclasses.asdict(book_config(spec))


BOOK_STAGE = Stage(
    "book",
    BookStage,
    (BOOK_PORT,),
    defaults=_defaults,
    doc="order book from market records; top 10 levels a side after each change",
)
