"""Converting the next items in a thread while the caller writes the previous ones."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


_END = object()


class Prefetch(Iterator[T], Generic[T]):
    """The items of ``items``, converted in a thread while the caller writes the previous ones.

    Conversion (compiled parsing, decompression) and writing (copies, checksums, fsync) both
    release the GIL, so on two cores they overlap. Order is kept; at most ``depth`` items wait,
    so memory stays bounded. An exception in conversion is raised to the caller in place of
    the item it stopped at; :meth:`close` stops the thread (and closes ``items``) early.
    """

    def __init__(self, items: Iterable[T], depth: int = 8) -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, name="ingest-convert", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        it: Iterator[T] | None = None
        try:
            it = iter(self._items)
            for item in it:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Raised(exc))
        finally:
            # A generator has to be closed by the thread that runs it.
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Raised):
            self._done = True
            raise item.exc
        return cast(T, item)

    def close(self) -> None:
        """Stop converting and wait for the thread to finish."""
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class _Raised:
    exc: BaseException
