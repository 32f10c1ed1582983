"""A thread that commits the projector's batches in order while the projector reads and maps the
next one: the log reads and the mapping overlap the database round trips.

One batch is being committed and at most one more waits, so memory stays bounded and the
batches reach the database in the order they were read. The first failure stops the writer:
later batches are dropped (their transactions never start) and the error is raised to the
caller at its next :meth:`Writer.submit` or at :meth:`Writer.close`; what was committed before
it stays, with the consumer positions that go with it, so the next projection resumes there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Writer(Generic[T]):
    """Runs ``commit(item)`` for every submitted item on a thread of its own, in order."""

    def __init__(self, commit: Callable[[T], None]) -> None:
        self._commit = commit
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tape-project-writer", daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Queue ``item`` (waits while one is committing and one is queued); raises the error
        of an earlier commit, if one failed."""
        self._raise()
        self._queue.put((item,))

    def close(self) -> None:
        """Wait until every queued item is committed; raises the first commit's error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._commit(item[0])
            except BaseException as error:
                self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
