"""Waking a reader when a partition grows, without polling: the file stays the truth.

A writer in another process appends a batch by writing its payload and then its index entry;
:class:`AppendWaiter` watches the partition directory with inotify (Linux) and returns from
:meth:`AppendWaiter.wait` as soon as an index or data file is written or a new segment is
created. It says only "something changed": the reader then reads the files, which decide
what is there. The watch is set up once, so an append between a reader's last look and its
next wait is not missed (the event waits in the inotify queue). Where inotify is not
available the waiter sleeps a short poll interval instead (and says so in ``mode``).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

try:  # Linux only; elsewhere the waiter polls
    from inotify_simple import INotify
    from inotify_simple import flags as _flags
except (ImportError, OSError):  # pragma: no cover - platform dependent
    INotify = None

POLL_SECONDS = 0.01
"""The fallback's sleep where inotify is missing."""


class AppendWaiter:
    """Waits for appends to one partition directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._inotify = None
        if INotify is not None:
            try:
                self._inotify = INotify()
                mask = _flags.MODIFY | _flags.CREATE | _flags.MOVED_TO
                self._inotify.add_watch(str(directory), mask)
            except OSError:  # e.g. out of inotify watches: fall back to polling
                self.close()
        self.mode = "inotify" if self._inotify is not None else f"poll {POLL_SECONDS * 1000:g} ms"

    def wait(self, timeout: float) -> bool:
        """Block until the partition changes or ``timeout`` seconds pass; True if it changed
        (with polling: always True after one poll interval)."""
        if self._inotify is None:
            time.sleep(min(timeout, POLL_SECONDS))
            return True
        return bool(self._inotify.read(timeout=max(0, round(timeout * 1000))))

    def close(self) -> None:
        """Stop watching."""
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    def __enter__(self) -> AppendWaiter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
