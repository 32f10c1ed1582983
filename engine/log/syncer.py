"""Durability off the hot path: a thread that syncs a partition's files every few ms.

A live session appends to its journal on the thread that then processes what it appended;
an ``fdatasync`` there (``--fsync interval``: one every 100 ms, inside whichever append
crosses the interval) costs milliseconds on a busy disk and stalls the message behind it.
:class:`BackgroundSync` gives the same promise from another thread: every ``interval_ms`` it
syncs the partition's newest segment files (opened read-only, so it shares no state with the
writer), and once more when stopped. A process crash loses nothing appended (as with every
policy); a power loss, at most what was appended in the last interval and the sync after it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from engine.log.segment import list_segments, segment_name


class BackgroundSync:
    """Syncs the newest segments of partition ``directories`` every ``interval_ms`` until
    :meth:`stop`."""

    def __init__(self, directories: list[Path], interval_ms: int = 100) -> None:
        self.directories, self.interval = directories, interval_ms / 1000
        self.syncs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync()

    def sync(self) -> None:
        """Sync the two newest segments' data and index files now (a roll leaves the older one
        with its last batches)."""
        for directory in self.directories:
            for base in list_segments(directory)[-2:]:
                for suffix in (".data", ".index"):
                    _sync(directory / (segment_name(base) + suffix))
        self.syncs += 1

    def stop(self) -> None:
        """Stop the thread after one last sync."""
        self._stop.set()
        self._thread.join()
        self.sync()


def _sync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
